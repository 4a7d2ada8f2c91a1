"""Recipe text shared by the notebook tests."""

from __future__ import annotations

#: A rootless appliance: the tree $${rootfs} is the in context's working directory,
#: checkpointed with rsync (no root, no mount). Recipes add their globals and steps.
DIRECTORY_APPLIANCE = """\
checkpoint: rsync.yaml
global:
  rootfs: $${kameleon_cwd}/rootfs
  out_context:
    cmd: bash
    workdir: $${kameleon_cwd}
  in_context:
    cmd: bash
    workdir: $${rootfs}
"""
