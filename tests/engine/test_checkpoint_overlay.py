"""Overlay mechanism specifics: many layers are flattened, mount options stay short."""

from __future__ import annotations

import os

import pytest

from kameleon_nb.core.model import StepId

from .test_checkpoint_contract import Harness

pytestmark = [
    pytest.mark.shell,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]


def test_deep_stacks_are_flattened_and_every_checkpoint_restores(tmp_path, monkeypatch):
    monkeypatch.setenv("KAMELEON_OVERLAY_MAX_DEPTH", "3")
    h = Harness(tmp_path, "overlay")
    try:
        h.ids()
        fingerprints = {}
        for index in range(8):
            h.sh(
                f"mkdir -p {h.rootfs}/d && echo {index} > {h.rootfs}/d/f{index}"
                f" && rm -f {h.rootfs}/d/f{index - 2}"
            )
            step_id = f"eeeeeeeeee{index:02d}"
            h.builder.checkpoints.create(StepId(step_id))
            fingerprints[step_id] = h.fingerprint()
            options = h.sh(f"findmnt -n -o OPTIONS {h.rootfs}")
            assert options.count("l/") <= 4, options  # never more than MAX_DEPTH+1 layers
        assert h.ids() == set(fingerprints)
        for step_id, fingerprint in fingerprints.items():
            h.builder.checkpoints.restore(StepId(step_id))
            assert h.fingerprint() == fingerprint, step_id
    finally:
        h.close()
