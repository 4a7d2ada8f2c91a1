"""``kameleon build --dryrun`` / ``-d -l`` / ``info`` / ``version`` against upstream's output."""

from __future__ import annotations

from pathlib import Path

import pytest

TRANSCRIPTS = Path(__file__).resolve().parents[1] / "data" / "compat" / "transcripts"
LOCATION_IDS = ("0c3d489ead04", "afaa493b1a44")  # compat README §6.2


def transcript(name: str) -> tuple[list[str], str, int]:
    lines = (TRANSCRIPTS / name).read_text().split("\n")
    assert lines[0].startswith("$ kameleon ")
    argv = lines[0][len("$ kameleon ") :].split()
    rc_line = lines[-2] if lines[-1] == "" else lines[-1]
    body = "\n".join(lines[1 : lines.index(rc_line)]) + "\n"
    return argv, body, int(rc_line[len("rc=") :])


def normalise(text: str, recipe_dir: Path, done_id: str) -> str:
    text = text.replace(str(recipe_dir), "<RECIPE_DIR>")
    return text.replace(done_id, "<DONE_ID>")


@pytest.mark.parametrize("name", ["01-dryrun.txt", "02-dryrun-list.txt", "03-dryrun-list-c.txt"])
def test_dry_runs_match_upstream_transcripts(tiny, kameleon, name):
    argv, expected, expected_rc = transcript(name)
    code, out = kameleon(*argv)
    assert code == expected_rc
    done_id = out.split("\n")[-2].split(" ")[0] if "-l" in argv else "<none>"
    for upstream_id in LOCATION_IDS:
        expected = expected.replace(upstream_id, "<DONE_ID>")
    assert normalise(out, tiny, done_id) == expected


def test_dryrun_with_relative_paths(tiny, kameleon):
    code, out = kameleon("build", "-d", "--relative", "tiny.yaml")
    assert code == 0
    assert "tiny (tiny.yaml)" in out
    assert "  greet (steps/setup/greet.yaml)" in out


def test_dryrun_accepts_the_recipe_without_extension(tiny, kameleon):
    assert kameleon("build", "-d", "tiny")[0] == 0


def test_cli_globals_are_announced_and_change_ids(tiny, kameleon):
    _, before = kameleon("build", "-d", "-l", "tiny.yaml")
    code, after = kameleon("build", "-d", "-l", "tiny.yaml", "-g", "fruit:kiwi")
    assert code == 0
    assert after.startswith("CLI Global variable override: fruit => kiwi\n")
    b, a = before.splitlines(), after.splitlines()[1:]
    # ids before use_user are kept, use_user and later chained ids change
    assert a[:7] == b[:7]
    assert a[8] != b[8]


def test_checkpoint_doc_spellings_are_accepted(tiny, kameleon):
    code, out = kameleon("build", "--dryrun", "--checkpoints", "--enable-checkpoint", "tiny.yaml")
    assert code == 0
    assert "c3a780affeaf | setup/inline_step/always" in out


def test_info_describes_the_recipe(tiny, kameleon):
    code, out = kameleon("info", "tiny.yaml")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == ["--------------------", "[Name]", " -> tiny"]
    assert " -> Tiny compatibility recipe using only plain local bash contexts." in lines
    assert f" -> {tiny}/steps/setup/greet.yaml" in lines
    assert f" -> {tiny}/steps/data/file.txt" in lines
    assert " -> fruit: apple" in lines
    assert " -> proxy_in: " in lines
    assert (
        f' -> in_context: {{"cmd"=>"bash", "proxy_cache"=>"127.0.0.1", "workdir"=>"{tiny}/build/tiny/in",'
        ' "interactive_cmd"=>"bash"}'
    ) in lines


def test_version(kameleon):
    code, out = kameleon("--version")
    assert code == 0
    assert out.startswith("Kameleon version 2.11.0")


def test_build_help_lists_upstream_options(kameleon, capsys):
    with pytest.raises(SystemExit) as exit_info:
        kameleon("build", "--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--from-checkpoint",
        "--enable-checkpointing",
        "--list-checkpoints",
        "--microstep-checkpoints",
        "--begin-checkpoint",
        "--dryrun",
        "--global",
    ):
        assert option in out


def test_unknown_option_is_a_usage_error(tiny, kameleon):
    code, out = kameleon("build", "tiny.yaml", "--no-such-option")
    assert code == 15
    assert out.startswith("Error: ERROR:")


def test_missing_recipe_argument(kameleon):
    code, out = kameleon("build")
    assert code == 7
    assert out == (
        "Error: A recipe file or a persistent cache archive is required to run this command.\n"
    )
