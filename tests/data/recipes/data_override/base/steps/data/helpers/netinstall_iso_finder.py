#!/usr/bin/env python3
"""Print the URL of the Debian netinstall ISO (fixture stub)."""
print("https://cdimage.debian.org/debian-cd/current/amd64/iso-cd/")
