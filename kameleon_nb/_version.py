"""Versions: kameleon_nb's own, and the upstream Kameleon release it is compatible with."""

VERSION = "0.1.0"
UPSTREAM = "2.11.0"
