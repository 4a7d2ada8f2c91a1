"""Differential fuzzer: random Kameleon recipes, kameleon_nb against upstream Kameleon 2.11.0.

A dev tool (it needs the ``kameleon-oracle`` install of upstream, so CI never runs it).
Each generated recipe tree (recipe, parents, step, alias, checkpoint, global, env and data
files) is written to a scratch directory and run by both tools from the tree's root with
the same absolute paths, the pinned uuid and stdin ``/dev/null``, in the dry-run modes
``d`` (``build -d``), ``l`` (``build -d -l``), ``lc`` (``build -d -l -c``) and ``info``.
Answers are compared as ``tests/corpus/compare.py`` does, and every difference gets a
short class signature.

Upstream runs in a persistent Ruby process (``benchmarks/oracle_driver.rb``, ~30x faster
than one ``kameleon-oracle`` per call, byte-identical answers: ``--check-driver`` and
``check-corpus`` verify it); ``--oneshot`` uses the real command. kameleon_nb runs
in-process (``--nb-path DIR`` imports it from a snapshot instead of the working tree).

Usage::

    python benchmarks/fuzz_differential.py --count 1000 --seed 1 [--jobs 1] \
        [--modes d,l,lc,info] [--out /tmp/kameleon-fuzz-out]
    python benchmarks/fuzz_differential.py --count 200 --check-driver   # driver == one-shot?
    python benchmarks/fuzz_differential.py check-corpus   # driver == the recorded corpus?
    python benchmarks/fuzz_differential.py show DIR       # both tools on one case directory
    python benchmarks/fuzz_differential.py minimize OUT/CLASS/EXAMPLE --into DIR
    python benchmarks/fuzz_differential.py record DIR --name NAME [--no-minimize]
    python benchmarks/fuzz_differential.py rerecord tests/data/fuzz/NAME ...
    python benchmarks/fuzz_differential.py xfail-list     # XFAIL of test_fuzz_cases.py

A run prints the number of recipes, how many are identical in every mode, and the
difference classes: a recipe's class is the signature of its first differing mode (in
the order d, info, l, lc): upstream's exit code and normalised Error line, or the kind
of output line that differs. Up to ``--keep`` smallest examples per class are written
under ``--out`` (the tree plus ``meta.json`` with both answers).

``minimize`` shrinks an example (delta debugging over files and lines, keeping its class
and kameleon_nb's own answer); ``record`` copies a case directory (an example, or a
hand-written directory with an ``r.yaml``) to ``tests/data/fuzz/NAME/`` and stores
upstream's answers (one-shot ``kameleon-oracle``) in ``expected.json``, recorded at
``/tmp/kameleon-fuzz-cases/NAME`` (see ``tests/corpus/test_fuzz_cases.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing
import os
import random
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "corpus"))

import compare  # noqa: E402  (tests/corpus/compare.py: Case, run, difference)

ORACLE_ROOT = Path(os.environ.get("KAMELEON_ORACLE_ROOT", "/opt/kameleon-2.11.0"))
DRIVER = Path(__file__).resolve().parent / "oracle_driver.rb"
PINNED = [
    "kameleon_uuid:00000000-0000-4000-8000-000000000000",
    "kameleon_short_uuid:000000000000",
]
MODE_ARGS = {
    "d": ["build", "-d"],
    "l": ["build", "-d", "-l"],
    "lc": ["build", "-d", "-l", "-c"],
    "info": ["info"],
}
MODE_ORDER = ["d", "info", "l", "lc"]
CASES_ROOT = Path("/tmp/kameleon-fuzz-cases")
FUZZ_DATA = ROOT / "tests" / "data" / "fuzz"
TIMEOUT = 20.0  # seconds per call (an extend cycle makes upstream loop)

# ---------------------------------------------------------------------------------------
# A small YAML writer that keeps the styles the generator asks for
# ---------------------------------------------------------------------------------------


@dataclass
class Scalar:
    """A scalar. ``style``: raw (the token as written), plain, single, double, literal, folded."""

    text: str
    style: str = "plain"
    chomp: str = ""  # block scalars: "", "-" or "+"


@dataclass
class Seq:
    items: list[object]
    flow: bool = False
    compact: bool = True  # under a key: items at the key's column


@dataclass
class Map:
    items: list[tuple[object, object]]
    flow: bool = False


@dataclass
class Raw:
    """Text inserted as is (used to break the YAML on purpose)."""

    text: str


_INDICATORS = set("-?:,[]{}#&*!|>'\"%@`")


def plain_ok(text: str, flow: bool) -> bool:
    if not text or text != text.strip() or text[0] in _INDICATORS:
        return False
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        return False
    if ": " in text or " #" in text or text.endswith(":"):
        return False
    return not (flow and any(c in text for c in ",[]{}:"))


def double_quoted(text: str, rng: random.Random | None = None) -> str:
    out = []
    for char in text:
        code = ord(char)
        if char == "\\":
            out.append("\\\\")
        elif char == '"':
            out.append('\\"')
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t" if rng is None or rng.random() < 0.5 else "\t")
        elif code < 32 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code > 127 and rng is not None and rng.random() < 0.3:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def inline_scalar(node: Scalar, flow: bool, rng: random.Random | None) -> str:
    if node.style == "raw":
        if flow and (node.text.startswith(":") or any(c in node.text for c in ",[]{}")):
            return double_quoted(node.text)  # not a valid flow token
        return node.text
    style = node.style
    if style in ("literal", "folded"):
        style = "double"
    if style == "plain" and not plain_ok(node.text, flow):
        style = "single"
    if style == "single" and (
        "\n" in node.text or any(ord(c) < 32 and c != "\t" for c in node.text)
    ):
        style = "double"
    if style == "single":
        return "'" + node.text.replace("'", "''") + "'"
    if style == "double":
        return double_quoted(node.text, rng)
    return node.text


def flow_text(node: object, rng: random.Random | None) -> str:
    if isinstance(node, Raw):
        return node.text
    if isinstance(node, Scalar):
        return inline_scalar(node, True, rng)
    if isinstance(node, Seq):
        return "[" + ", ".join(flow_text(i, rng) for i in node.items) + "]"
    if isinstance(node, Map):
        return "{" + ", ".join(f"{key_text(k)}: {flow_text(v, rng)}" for k, v in node.items) + "}"
    if node is None:
        return ""
    return str(node)


def key_text(key: object) -> str:
    if isinstance(key, Scalar):
        return inline_scalar(key, True, None)
    if isinstance(key, Raw):
        return key.text
    return str(key)


def emit(node: object, col: int, prefix: str, out: list[str], rng: random.Random | None) -> None:
    """Write ``node`` after ``prefix`` (a ``key:`` or ``-`` at column ``col``)."""
    pad2 = " " * (col + 2)
    if node is None:
        out.append(prefix)
    elif isinstance(node, Raw):
        out.append(f"{prefix} {node.text}")
    elif isinstance(node, Scalar) and node.style in ("literal", "folded"):
        header = ("|" if node.style == "literal" else ">") + node.chomp
        out.append(f"{prefix} {header}")
        lines = node.text.split("\n")
        lines[0] = lines[0].lstrip(" ")
        out.extend(pad2 + line if line else "" for line in lines)
        if node.chomp == "+":
            out.append("")
    elif isinstance(node, Scalar):
        out.append(f"{prefix} {inline_scalar(node, False, rng)}")
    elif isinstance(node, (Seq, Map)) and (node.flow or not node.items):
        out.append(f"{prefix} {flow_text(node, rng)}")
    elif isinstance(node, Seq):
        out.append(prefix)
        item_col = col if (node.compact and prefix.rstrip().endswith(":")) else col + 2
        for item in node.items:
            emit(item, item_col, " " * item_col + "-", out, rng)
    elif isinstance(node, Map):
        if prefix.rstrip().endswith("-"):
            for index, (key, value) in enumerate(node.items):
                head = f"{prefix} {key_text(key)}:" if index == 0 else f"{pad2}{key_text(key)}:"
                emit(value, col + 2, head, out, rng)
        else:
            out.append(prefix)
            for key, value in node.items:
                emit(value, col + 2, f"{pad2}{key_text(key)}:", out, rng)
    else:
        out.append(f"{prefix} {node}")


def document(node: object, rng: random.Random | None, header: str = "") -> str:
    out: list[str] = [header] if header else []
    if isinstance(node, Map) and not node.flow and node.items:
        for key, value in node.items:
            emit(value, 0, f"{key_text(key)}:", out, rng)
    elif isinstance(node, Seq) and not node.flow and node.items:
        for item in node.items:
            emit(item, 0, "-", out, rng)
    elif isinstance(node, Raw):
        out.append(node.text)
    else:
        out.append(flow_text(node, rng))
    return "\n".join(line.rstrip() if line.strip() else "" for line in out) + "\n"


# ---------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------

TYPED_TOKENS = [
    # ints in every notation Psych reads
    "42", "-7", "0", "+12", "0x1F", "0o17", "017", "0b101", "1_000", "1,000", "08", "0777",
    # floats
    "1.5", "12.50", "1e3", "1.0e+3", "-.5", ".5", "1_000.5", ".inf", "-.Inf", ".NaN",
    "6.8523015e+5", "1.", "0.0", "3.14159265358979",
    # booleans, nulls
    "true", "false", "yes", "no", "on", "off", "True", "FALSE", "Yes", "NO", "y", "n", "Y",
    "null", "~", "Null", "NULL",
    # dates, times, sexagesimal
    "2024-01-02", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5",
    "2024-01-02T03:04:05Z", "2024-1-2", "12:30", "1:20:30", "-1:30", "190:20:30.15",
    # tags, symbols
    "!!binary aGVsbG8=", "!!str 12", "!!float 3", "!!str yes", ":sym", ':"quoted sym"',
    ":a-b", "!!int '7'",
]  # fmt: skip

SAFE_STRINGS = [
    "hello", "two words", "héllo wörld", "日本語", "emoji 😀", "/abs/path/to/file.txt",
    "with-dash", "a.b", "x=1", "CamelCase", "under_score", "1.2.3", "v1", "a b c",
]  # fmt: skip
STRING_VALUES = [
    *SAFE_STRINGS,
    "a: b", "# not a comment",
    "x #y", "'quoted'", '"dq"', "@at", "`tick`", "%pct", "&amp", "*star", "!bang", "|pipe",
    ">gt", "-dash", "? q", "[x]", "{y}", "a,b", "trailing ", " leading", "tab\there",
    "two\nlines", "ends with newline\n", "a---b", "---", "...", "a ... b", "<<", "=",
    "yes", "0x1F", "12", "1.5", "null", "", "back\\slash", "nbsp\u00a0x", "bell\x07",
    "a long value that goes on and on well past the eighty column limit of the emitter xx",
    "$$", "$HOME", "${x}", "-", ":colon", "x:y", "key:", "/abs/path/to/file.txt", "~/home",
]  # fmt: skip

WORDS = ["echo", "true", "printf '%s\\n'", "cat", "ls -l", "test -f", "mkdir -p", ":"]
ARGS = [
    "hello", "/tmp/x", "-n", '"quoted arg"', "'single'", "a---b", "$HOME", "${PWD}", "$$",
    "$(date)", "x=1", "&&", "|", ">", "2>&1", "é", "日本", "#", "@1", "...", "a:b", "*.txt",
    "`uname`", "\\t", "%s", "!", "~", "{a,b}", "[x]",
]  # fmt: skip

VAR_NAMES = ["a", "b", "pkg", "arch", "arch-live", "v_1", "who", "rootfs", "x", "Name2", "opt"]
BUILTINS = [
    "kameleon_recipe_name", "kameleon_recipe_dir", "kameleon_cwd", "kameleon_uuid",
    "kameleon_short_uuid", "checkpointing_enabled", "persistent_cache", "proxy_local",
    "proxy_out", "proxy_in", "in_context", "out_context",
]  # fmt: skip
SECTIONS = ["bootstrap", "setup", "export"]
EXEC = ["exec_local", "exec_out", "exec_in"]
ON_CHECKPOINT = ["use_cache", "redo", "skip", "only", "disabled", "use_cache", "redo"]

# ---------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------


@dataclass
class Tree:
    files: dict[str, str | bytes] = field(default_factory=dict)
    recipe: str = "r.yaml"
    features: set[str] = field(default_factory=set)

    def write(self, root: Path) -> None:
        for rel, content in self.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")


class Generator:
    """One random recipe tree; ``invalid`` breaks it in one of many ways."""

    def __init__(self, rng: random.Random, invalid_rate: float = 0.3) -> None:
        self.rng = rng
        self.tree = Tree()
        self.invalid = rng.random() < invalid_rate
        self.breakage = rng.choice(INVALID_KINDS) if self.invalid else ""
        self.globals: list[str] = []  # names visible to commands (acyclic, defined)
        self.aliases: dict[str, int] = {}  # name -> arity
        self.data: list[str] = []  # paths relative to some steps/data/
        self.step_counter = 0
        self.recipe_dir = ""  # relative dir of the entry recipe
        self.steps_dirs: list[str] = []  # where step files can go (relative)
        self.include_steps: list[str] = []
        self.deps: dict[str, set[str]] = {}  # global -> the names its value refers to
        self.complex: set[str] = set()  # globals holding a list or a map
        self.extra_globals: list[tuple[str, object]] = []

    # -- small helpers -------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def feature(self, name: str) -> None:
        self.tree.features.add(name)

    def pick(self, seq: list[str]) -> str:
        return self.rng.choice(seq)

    def string_scalar(self, text: str) -> Scalar:
        style = self.rng.choice(["plain", "plain", "plain", "single", "double"])
        if "\n" in text.rstrip("\n") and self.chance(0.7):
            style = self.rng.choice(["literal", "folded"])
            chomp = self.rng.choice(["", "-", "+"])
            return Scalar(text.rstrip("\n"), style, chomp)
        return Scalar(text, style)

    def var_ref(self, name: str, allow_unbraced: bool = True) -> str:
        if allow_unbraced and self.chance(0.2):
            self.feature("unbraced-var")
            return "$$" + name
        return "$${" + name + "}"

    def visible_vars(self, local: list[str] | None = None) -> list[str]:
        names = [g for g in self.globals if g not in self.complex or self.chance(0.1)]
        names += local or []
        if self.chance(0.3):
            names += BUILTINS[:10] if self.chance(0.9) else BUILTINS
        return names

    def value(self, refs: list[str], scope: str = "global") -> object:
        """A variable value: typed token, string, reference chain, data path, list, map."""
        roll = self.rng.random()
        if roll < 0.3:
            self.feature("typed-scalar")
            return Scalar(self.pick(TYPED_TOKENS), "raw")
        if roll < 0.55:
            pool = STRING_VALUES if self.chance(0.3) else SAFE_STRINGS
            return self.string_scalar(self.pick(pool))
        if roll < 0.8 and refs:
            first = self.var_ref(self.pick(refs))
            second = self.var_ref(self.pick(refs), allow_unbraced=False)
            template = self.rng.choice(["{}", "{}-suffix", "pre {} post", "{}/sub", "{}{}"])
            if not first.startswith("$${") and self.chance(0.9):
                template = template.replace("{}-", "{} -")  # else it names another variable
            rendered = template.replace("{}", first, 1).replace("{}", second, 1)
            self.feature("var-in-value")
            return self.string_scalar(rendered)
        if roll < 0.88 and self.data:
            self.feature("data-in-var")
            return self.string_scalar(self.data_ref())
        if scope != "global" or roll < 0.88:
            return self.string_scalar(self.pick(SAFE_STRINGS))
        if roll < 0.94:
            self.feature("list-value")
            return Seq(
                [Scalar(self.pick(TYPED_TOKENS + STRING_VALUES[:5]), "raw")],
                flow=self.chance(0.5),
            )
        self.feature("map-value")
        return Map([("k", self.string_scalar(self.pick(STRING_VALUES[:6])))], flow=self.chance(0.5))

    def data_ref(self) -> str:
        target = self.pick(self.data)
        prefix = "$${kameleon_data_dir}/" if self.chance(0.8) else "$$kameleon_data_dir/"
        return prefix + target

    def shell_text(self, refs: list[str]) -> str:
        words = [self.pick(WORDS)]
        for _ in range(self.rng.randint(0, 4)):
            if refs and self.chance(0.35):
                name = self.pick(refs)
                ref = self.var_ref(name)
                if not ref.startswith("$${"):
                    ref += self.rng.choice([" ", "/x", ".txt", ""])
                words.append(ref.rstrip())
            else:
                words.append(self.pick(ARGS))
        text = " ".join(words)
        if self.data and self.chance(0.15):
            self.feature("data-in-command")
            text = self.pick(["cat", "cp", "bash", "ls -l /tmp"]) + " " + self.data_ref()
            if self.chance(0.1):
                text = '"' + text + '"' if self.chance(0.5) else text + '"'
        return text

    def exec_value(self, refs: list[str]) -> object:
        roll = self.rng.random()
        if roll < 0.1:
            self.feature("typed-command")
            return Scalar(self.pick(TYPED_TOKENS), "raw")
        if roll < 0.25:
            self.feature("block-command")
            lines = [self.shell_text(refs) for _ in range(self.rng.randint(1, 4))]
            if self.chance(0.2):
                lines.insert(1, "")
            if self.chance(0.2):
                lines.append("  indented " + self.pick(ARGS))
            style = self.rng.choice(["literal", "literal", "folded"])
            return Scalar("\n".join(lines), style, self.rng.choice(["", "-", "-", "+"]))
        text = self.shell_text(refs)
        if self.chance(0.05):
            text = self.pick(STRING_VALUES)
        return self.string_scalar(text)

    # -- commands ------------------------------------------------------------------
    def command(self, refs: list[str], depth: int = 0, hooks: bool = True) -> object:
        roll = self.rng.random()
        if roll < 0.5 or depth > 2:
            return Map([(self.pick(EXEC), self.exec_value(refs))])
        if roll < 0.6 and self.aliases:
            return self.alias_call(refs)
        if roll < 0.7:
            kind = self.rng.choice(["group", "test", "rescue", "pipe"])
            self.feature(f"list-command-{kind}")
            if kind == "pipe":
                items = [Map([(self.pick(EXEC), self.exec_value(refs))]) for _ in range(2)]
            else:
                count = {"group": self.rng.randint(1, 3), "test": self.rng.randint(2, 3)}.get(
                    kind, 2
                )
                items = [self.command(refs, depth + 1, hooks=False) for _ in range(count)]
            return Map([(kind, Seq(items, flow=self.chance(0.1), compact=self.chance(0.5)))])
        if roll < 0.85 and hooks:
            return self.hook(refs, depth)
        roll = self.rng.random()
        if roll < 0.3:
            self.feature("breakpoint")
            return (
                Map([("breakpoint", self.string_scalar(self.shell_text(refs)))])
                if self.chance(0.7)
                else Scalar("breakpoint")
            )
        if roll < 0.5:
            self.feature("reload-context")
            return Map([("reload_context", Scalar(self.pick(["in", "out", "local"])))])
        if roll < 0.6:
            self.feature("unknown-command")
            return Map([("exec_foo", self.string_scalar("echo hi"))])
        if roll < 0.7:
            self.feature("bare-string-command")
            return Scalar(self.pick(["echo hi", "exec_local", "echo hi", "exec_local", "true"]))
        return Map([(self.pick(EXEC), self.exec_value(refs))])

    def hook(self, refs: list[str], depth: int) -> object:
        section = self.pick(SECTIONS)
        key = self.rng.choice(
            [
                f"on_{section}_clean",
                f"on_{section}_init",
                "on_clean",
                f"on_{section}_clean",
                "on_clean",
            ]
        )
        self.feature(f"hook-{key}")
        cmds = [self.command(refs, depth + 1, hooks=False) for _ in range(self.rng.randint(1, 2))]
        return Map([(key, Seq(cmds, flow=self.chance(0.1), compact=self.chance(0.5)))])

    def alias_call(self, refs: list[str]) -> object:
        name = self.pick(sorted(self.aliases))
        arity = self.aliases[name]
        self.feature("alias-call")
        args: list[object] = []
        for _ in range(arity):
            roll = self.rng.random()
            if roll < 0.6:
                args.append(self.string_scalar(self.shell_text(refs)))
            elif roll < 0.8:
                pool = STRING_VALUES if self.chance(0.15) else SAFE_STRINGS
                args.append(self.string_scalar(self.pick(pool)))
            elif roll < 0.95:
                self.feature("alias-block-arg")
                args.append(
                    Scalar(
                        self.shell_text(refs) + "\n" + self.shell_text(refs),
                        self.rng.choice(["literal", "folded"]),
                        self.rng.choice(["", "-", "-"]),
                    )
                )
            else:
                self.feature("alias-typed-arg")
                args.append(Scalar(self.pick(TYPED_TOKENS[:20]), "raw"))
        if arity == 0:
            return Scalar(name) if self.chance(0.95) else Map([(name, None)])
        if arity == 1 and self.chance(0.5):
            return Map([(name, args[0])])
        self.feature("alias-flow-args" if self.chance(0.5) else "alias-block-args")
        return Map([(name, Seq(args, flow=self.chance(0.5), compact=self.chance(0.5)))])

    def microstep(self, name: str, refs: list[str]) -> Map:
        cmds: list[object] = []
        for _ in range(self.rng.randint(1, 3)):
            cmds.append(self.command(refs))
        if self.chance(0.25):
            self.feature("on_checkpoint")
            value: object = Scalar(self.pick(ON_CHECKPOINT))
            if self.chance(0.1):
                value = Scalar(self.pick(["12", "true", "~", "sometimes"]), "raw")
            cmds.insert(self.rng.randint(0, len(cmds)), Map([("on_checkpoint", value)]))
        return Map([(name, Seq(cmds, compact=self.chance(0.6)))])

    # -- steps ---------------------------------------------------------------------
    def step_name(self) -> str:
        self.step_counter += 1
        return self.rng.choice(["st", "step", "do-it", "x_y", "pkg"]) + str(self.step_counter)

    def step_file(self, section: str) -> tuple[str, list[str], list[str]]:
        """Write a step file; return (name, default variable names, microstep names)."""
        name = self.step_name()
        defaults = []
        items: list[object] = []
        for _ in range(self.rng.randint(0, 3)):
            var = self.pick(VAR_NAMES)
            defaults.append(var)
            items.append(Map([(var, self.value(self.globals, "local"))]))
        micro_names = []
        for index in range(self.rng.randint(1, 3)):
            micro = self.rng.choice(["m", "install", "conf", "m"]) + str(index)
            if self.chance(0.1) and micro_names:
                micro = micro_names[0]  # duplicate names: %1 slugs
                self.feature("duplicate-microstep")
            micro_names.append(micro)
            items.append(self.microstep(micro, self.visible_vars(defaults)))
        if self.chance(0.2):
            self.rng.shuffle(items)
        directory = self.pick(self.steps_dirs)
        sub = self.rng.choice([section, section, "", *self.include_steps])
        rel = "/".join(p for p in (directory, sub, name + ".yaml") if p)
        self.tree.files[rel] = document(Seq(items), self.rng)
        return name, defaults, micro_names

    def section_entry(self, section: str) -> object:
        roll = self.rng.random()
        if roll < 0.25:
            self.feature("embedded-macrostep")
            name = self.step_name()
            items: list[object] = []
            local = []
            for _ in range(self.rng.randint(0, 2)):
                var = self.pick(VAR_NAMES)
                local.append(var)
                items.append(Map([(var, self.value(self.globals, "local"))]))
            for index in range(self.rng.randint(1, 2)):
                items.append(self.microstep(f"e{index}", self.visible_vars(local)))
            return Map([(name, Seq(items, compact=self.chance(0.5)))])
        name, defaults, micros = self.step_file(section)
        if roll < 0.6:
            if self.chance(0.15):
                self.feature("var-in-step-name")
                gname = f"stepname{self.step_counter}"
                self.extra_globals.append((gname, Scalar(name)))
                return Scalar(self.var_ref(gname, allow_unbraced=False))
            return Scalar(name)
        args: list[object] = []
        if defaults and self.chance(0.7):
            self.feature("step-var-override")
            for var in self.rng.sample(defaults, self.rng.randint(1, len(defaults))):
                args.append(Map([(var, self.value(self.globals, "local"))]))
        if self.chance(0.5):
            self.feature("microstep-selection")
            chosen = self.rng.sample(micros, self.rng.randint(1, len(micros)))
            args += [Scalar(m) for m in chosen]
        if self.chance(0.1):
            args.append(Map([("newvar", self.value(self.globals, "local"))]))
        if not args:
            return Scalar(name)
        return Map([(name, Seq(args, flow=self.chance(0.2), compact=self.chance(0.5)))])

    # -- recipe pieces -------------------------------------------------------------
    def aliases_map(self) -> Map:
        items = []
        for index in range(self.rng.randint(1, 3)):
            name = self.rng.choice(["write_local", "local2out", "my-alias", "al"]) + str(index)
            arity = self.rng.choice([0, 1, 1, 2, 3])
            cmds = []
            for _ in range(self.rng.randint(1, 2)):
                text = self.shell_text(self.globals)
                for arg in range(1, arity + 1):
                    text += f" @{arg}"
                if arity and self.chance(0.2):
                    text = text.replace("@1", "@1@1", 1)
                # a zero-argument alias nested in one with arguments crashes upstream
                # and so does a list of arguments to a nested alias
                nestable = [
                    a for a, n in self.aliases.items() if not arity or n == 1 or self.chance(0.1)
                ]
                if self.chance(0.2) and nestable:
                    nested = self.pick(sorted(nestable))
                    self.feature("nested-alias")
                    cmds.append(self.alias_call_with(nested, arity))
                else:
                    cmds.append(Map([(self.pick(EXEC), self.string_scalar(text))]))
            if self.chance(0.15):
                self.feature("alias-list-command")
                cmds.append(
                    Map([("rescue", Seq([cmds[0], Map([("exec_local", Scalar("echo @0"))])]))])
                )
            self.aliases[name] = len({m for m in re.findall(r"@\d+", document(Seq(cmds), None))})
            items.append((name, Seq(cmds, compact=self.chance(0.5))))
        return Map(items)

    def alias_call_with(self, name: str, outer_arity: int) -> object:
        arity = self.aliases[name]
        args = [Scalar(f"@{i + 1}" if i < outer_arity else f"v{i}") for i in range(arity)]
        if arity == 0:
            return Scalar(name)
        if arity == 1 and self.chance(0.8):
            return Map([(name, args[0])])
        return Map([(name, Seq(args, flow=True))])

    def checkpoint_map(self) -> Map:
        keys = ["create", "apply", "list", "clear"]
        if self.chance(0.7):
            keys.insert(0, "enabled?")
        items = []
        for key in keys:
            cmds = []
            for _ in range(self.rng.randint(1, 2)):
                text = self.shell_text(self.globals)
                if key in ("create", "apply") and self.chance(0.7):
                    text += " @microstep_id"
                cmds.append(Map([(self.pick(EXEC), self.string_scalar(text))]))
            if self.aliases and self.chance(0.1):
                cmds.append(self.alias_call(self.globals))
            items.append((key, Seq(cmds, compact=self.chance(0.5))))
        return Map(items)

    def context_value(self) -> object:
        roll = self.rng.random()
        if roll < 0.9:
            return Map(
                [
                    ("cmd", Scalar(self.pick(["bash", "/bin/bash", "chroot $${rootfs} bash"]))),
                    ("workdir", Scalar("/root")),
                ][: self.rng.randint(1, 2)]
            )
        if roll < 0.95:
            self.feature("context-list")
            return Seq([Map([("cmd", Scalar("bash"))]), Map([("workdir", Scalar("/tmp"))])])
        self.feature("context-odd")
        return self.rng.choice(
            [Map([("workdir", Scalar("/tmp"))]), Scalar("~", "raw"), Scalar("bash")]
        )

    def write_data(self, base: str) -> None:
        for _ in range(self.rng.randint(1, 3)):
            name = self.rng.choice(["x.conf", "a b.txt", "script.sh", "dir/f.txt", "é.txt"])
            rel = f"{base}/data/{name}"
            self.tree.files[rel] = "data\n"
            self.data.append(name if not name.startswith("dir/") or self.chance(0.5) else "dir")

    def description(self) -> str:
        if not self.chance(0.4):
            return ""
        self.feature("description")
        text = self.pick(["A recipe", "Two  spaces", "Unicode é 日本", "multi"])
        if text == "multi":
            return "# DESCRIPTION: first line\n# second  line\n#\n"
        return f"# DESCRIPTION: {text}\n#\n"

    def reaches(self, name: str, target: str) -> bool:
        seen: set[str] = set()
        todo = [name]
        while todo:
            current = todo.pop()
            if current == target:
                return True
            if current not in seen:
                seen.add(current)
                todo.extend(self.deps.get(current, ()))
        return False

    def globals_map(self, names: list[str], extra: Iterable[tuple[str, object]] = ()) -> Map:
        items: list[tuple[object, object]] = []
        for name in names:
            refs = [g for g in self.globals if not self.reaches(g, name)]
            refs = [g for g in refs if g not in self.complex or self.chance(0.1)]
            if self.chance(0.2):
                refs += BUILTINS[:10]
            value = self.value(refs)
            self.deps[name] = set(re.findall(r"\$\$\{?([\w-]+)", flow_text(value, None)))
            if isinstance(value, (Seq, Map)):
                self.complex.add(name)
            else:
                self.complex.discard(name)
            items.append((name, value))
            if name not in self.globals:
                self.globals.append(name)
        items.extend(extra)
        return Map(items)

    # -- the whole tree ------------------------------------------------------------
    def build(self) -> Tree:
        rng = self.rng
        self.recipe_dir = rng.choice(["", "", "recipes"])
        self.steps_dirs = ["steps"]
        roll = rng.random()
        if roll < 0.1:
            self.steps_dirs = [".steps"]
            self.feature("dot-steps")
        elif roll < 0.13:
            # both at the root: upstream's steps-dir list then becomes nil for a recipe there
            self.steps_dirs.append(".steps")
            self.feature("dot-steps-and-steps")
        if self.recipe_dir:
            self.steps_dirs.append(f"{self.recipe_dir}/steps")
        if self.chance(0.1):
            self.include_steps = ["ubuntu", "debian/wheezy"][: rng.randint(1, 2)]
            self.feature("include-steps")
        if self.chance(0.5):
            self.write_data(self.pick(self.steps_dirs))
            if self.chance(0.3):
                self.write_data(self.pick(self.steps_dirs))  # overrides and extra files

        # parents (extend chain), written first so their globals are visible
        chain = rng.choice([0, 0, 0, 1, 1, 2])
        parents: list[str] = []
        for level in range(chain):
            parents.append(rng.choice(["base", "parents/base", "grand"]) + str(level))
        recipe_rel = (self.recipe_dir + "/" if self.recipe_dir else "") + "r.yaml"
        self.tree.recipe = recipe_rel
        parent_docs: list[tuple[str, Map]] = []
        for index, parent in enumerate(reversed(parents)):
            self.feature("extend")
            doc = self.recipe_map(is_parent=True, has_base=index > 0)
            parent_docs.append((parent, doc))
        # link the chain: each recipe extends the next one up
        ordered = list(reversed(parent_docs))  # nearest parent first
        for index, (parent, doc) in enumerate(ordered):
            if index + 1 < len(ordered):
                up = ordered[index + 1][0]
                doc.items.insert(0, ("extend", Scalar(self.extend_ref(parent, up, False))))
            self.tree.files[parent + ".yaml"] = document(doc, rng, self.description())
        doc = self.recipe_map(is_parent=False, has_base=bool(parents))
        if parents:
            doc.items.insert(0, ("extend", Scalar(self.extend_ref(recipe_rel[:-5], parents[0]))))
        if self.extra_globals:
            self.add_globals(doc, self.extra_globals)
        if self.chance(0.03):
            self.feature("global-include")
            self.tree.files["steps/global/common.yaml"] = "inc_a: included\ninc_b: 12\n"
            incl: object = Scalar("common")
            if self.chance(0.5):
                incl = Seq([Scalar("-optional"), Scalar("common")], flow=True)
            self.add_globals(doc, [("include", incl)])
        if self.chance(0.05):
            self.feature("env")
            self.tree.files["steps/env/myenv.sh"] = "export FOO=<%= @context_name %>\n"
            doc.items.append(("env", Scalar("myenv.sh")))
        text = document(doc, rng, self.description())
        self.tree.files[recipe_rel] = text
        if self.invalid:
            self.break_tree()
        return self.tree

    def add_globals(self, doc: Map, extra: list[tuple[str, object]]) -> None:
        for key, value in doc.items:
            if key == "global" and isinstance(value, Map):
                value.items.extend(extra)
                return
        doc.items.insert(0, ("global", Map(list(extra))))

    def extend_ref(self, child: str, parent: str, entry: bool = True) -> str:
        child_dir = os.path.dirname(child)
        rel = os.path.relpath(parent, child_dir or ".")
        if self.chance(0.3):
            rel += ".yaml"
        if entry and self.chance(0.15):
            self.feature("extend-var")
            self.extra_globals.append(("backend", Scalar(rel)))
            return "$${backend}"
        return rel

    def recipe_map(self, is_parent: bool, has_base: bool) -> Map:
        rng = self.rng
        items: list[tuple[object, object]] = []
        inherited = [g for g in self.globals if g not in BUILTINS]
        names = rng.sample(VAR_NAMES, rng.randint(0, 4))
        gmap = self.globals_map(names)
        inherited = [g for g in inherited if g not in names]
        if has_base and inherited and self.chance(0.4):
            name = self.pick(inherited)
            self.feature("overload")
            gmap.items.append((name, self.string_scalar(f"$${{{name}}} extra")))
        for ctx in ("in_context", "out_context"):
            if self.chance(0.1 if is_parent else 0.15):
                gmap.items.append((ctx, self.context_value()))
        if self.include_steps and self.chance(0.7):
            gmap.items.append(
                ("include_steps", Seq([Scalar(s) for s in self.include_steps], flow=True))
            )
        if gmap.items or self.chance(0.3):
            items.append(("global", gmap))
        if self.chance(0.35):
            self.feature("aliases")
            amap = self.aliases_map()
            if self.chance(0.5):
                self.feature("aliases-file")
                files = []
                for index, chunk in enumerate((amap.items[:1], amap.items[1:])):
                    if chunk:
                        fname = f"al{self.step_counter}_{index}.yaml"
                        directory = self.pick(self.steps_dirs)
                        self.tree.files[f"{directory}/aliases/{fname}"] = document(Map(chunk), rng)
                        files.append(Scalar(fname))
                items.append(("aliases", files[0] if len(files) == 1 else Seq(files)))
            else:
                items.append(("aliases", amap))
        if self.chance(0.45):
            self.feature("checkpoint")
            cmap = self.checkpoint_map()
            if self.chance(0.25):
                self.feature("checkpoint-file")
                self.tree.files[f"{self.pick(self.steps_dirs)}/checkpoints/ck.yaml"] = document(
                    cmap, rng
                )
                items.append(("checkpoint", Scalar("ck.yaml")))
            else:
                items.append(("checkpoint", cmap))
        for section in SECTIONS:
            roll = rng.random()
            if roll < 0.15:
                continue  # no section (a child then drops its parent's)
            if roll < 0.2:
                items.append((section, None if self.chance(0.5) else Seq([], flow=True)))
                continue
            entries = [self.section_entry(section) for _ in range(rng.randint(0, 3))]
            if has_base and self.chance(0.6):
                self.feature("at-base")
                style = rng.choice(["double", "single", "flow"])
                base = Scalar("@base", "double" if style == "flow" else style)
                entries.insert(rng.randint(0, len(entries)), base)
                flow = style == "flow" and all(isinstance(e, Scalar) for e in entries)
                items.append((section, Seq(entries, flow=flow, compact=self.chance(0.6))))
                continue
            items.append((section, Seq(entries, compact=self.chance(0.6))))
        if self.chance(0.2):
            rng.shuffle(items)
        return Map(items)

    # -- breaking it ---------------------------------------------------------------
    def break_tree(self) -> None:
        self.feature(f"invalid-{self.breakage}")
        files = self.tree.files
        recipe = self.tree.recipe
        text = str(files[recipe])
        kind = self.breakage
        yaml_files = [k for k, v in files.items() if k.endswith(".yaml") and isinstance(v, str)]
        if kind == "undefined-var":
            target = self.pick(yaml_files)
            body = str(files[target])
            spots = [m.start() for m in re.finditer(r"(exec_\w+|echo)", body)]
            if spots:
                at = self.pick([str(s) for s in spots])
                files[target] = body[: int(at)] + "echo $${undefined_v} ; " + body[int(at) :]
            else:
                files[recipe] = text + "global:\n  zz: $${undefined_v}\n"
        elif kind == "missing-step":
            files[recipe] = text + "export:\n  - no_such_step\n"
        elif kind == "alias-arity":
            given = self.pick(["x", "[a]", "[a, b, c]", ""])
            files[recipe] = text + (
                "aliases:\n  two: [exec_local: echo @1 @2]\n"
                f"setup:\n  - ar:\n    - m:\n      - two: {given}\n"
            )
        elif kind == "bad-yaml":
            target = self.pick(yaml_files)
            lines = str(files[target]).split("\n")
            at = self.rng.randint(0, max(0, len(lines) - 1))
            lines.insert(
                at,
                self.pick(["\tbad: tab", "  - 'unclosed", "- @base", "]", "x: [1, 2", "a: b: c"]),
            )
            files[target] = "\n".join(lines)
        elif kind == "non-list-section":
            files[recipe] = text + self.pick(
                ["setup: foo\n", "setup: {a: b}\n", "bootstrap: 12\n", "export: |\n  x\n"]
            )
        elif kind == "context-no-cmd":
            files[recipe] = (
                text
                + "global:\n  in_context: "
                + self.pick(
                    ["[{workdir: /tmp}]", "{cmd: }", "~", "bash", "[]", "{}", "[{cmd: b}, 3]"]
                )
                + "\n"
            )
        elif kind == "missing-microstep":
            files[recipe] = text + "setup:\n  - ms:\n    - m:\n      - exec_local: x\n"
            files["steps/setup/sel.yaml"] = "- a:\n  - exec_local: echo\n"
            files[recipe] = text + "setup:\n  - sel:\n    - nothere\n"
        elif kind == "step-not-list":
            files["steps/setup/nl.yaml"] = self.pick(["a: b\n", "12\n", "", "~\n", "--- x\n"])
            files[recipe] = text + "setup:\n  - nl\n"
        elif kind == "bad-hook":
            files[recipe] = (
                text
                + "setup:\n  - hk:\n    - m:\n      - "
                + self.pick(
                    [
                        "on_foo_clean: [exec_local: x]",
                        "on_setup_clean: echo",
                        "on_clean: ~",
                        "on_init: [exec_local: x]",
                        "on_setup_init: {a: b}",
                    ]
                )
                + "\n"
            )
        elif kind == "missing-data":
            files[recipe] = (
                text
                + "setup:\n  - md:\n    - m:\n      - exec_local: "
                + self.pick(
                    [
                        "cat $${kameleon_data_dir}/nothere",
                        "cat $${kameleon_data_dir}/x.conf | tr a b",
                        "cp $${kameleon_data_dir}/x.conf $${kameleon_data_dir}/x.conf",
                    ]
                )
                + "\n"
            )
            files["steps/data/x.conf"] = "x\n"
        elif kind == "missing-file":
            files[recipe] = text + self.pick(
                [
                    "aliases: nothere.yaml\n",
                    "checkpoint: nothere.yaml\n",
                    "env: nothere.sh\n",
                    "extend: nothere\n",
                    "aliases: [a.yaml, nothere.yaml]\n",
                ]
            )
            files["steps/aliases/a.yaml"] = "a: [exec_local: echo]\n"
        elif kind == "not-a-mapping":
            files[recipe] = self.pick(["- a\n- b\n", "12\n", "", "~\n", "just text\n"])
        elif kind == "checkpoint-keys":
            files[recipe] = (
                text
                + "checkpoint:\n  create: [exec_local: x]\n"
                + self.pick(["  apply: [exec_local: y]\n", "  list: echo\n", "  clear: ~\n", ""])
            )
        elif kind == "malformed-entry":
            files[recipe] = (
                text
                + "setup:\n"
                + self.pick(
                    ["  - 12\n", "  - [a, b]\n", "  - ~\n", "  - {a: b, c: d}\n", "  - a: b\n"]
                )
            )
        elif kind == "syntax-after-subst":
            files[recipe] = text + (
                "global:\n  colon: 'a: b'\n  nl: |\n    x\nsetup:\n  - ss:\n    - m:\n"
                f"      - exec_local: echo $${{{self.pick(['colon', 'nl'])}}}\n"
            )
        elif kind == "cyclic-variable":
            # a deliberate difference (upstream overflows its stack); an extend cycle is
            # one too, but upstream then loops until the timeout, so it is not generated
            files[recipe] = text + (
                "global:\n  cyc: $${cyc}\nsetup:\n  - c:\n    - m:\n      - exec_local: $${cyc}\n"
            )
        # a duplicated key: the last one wins (the appended blocks above rely on it)


INVALID_KINDS = [
    "undefined-var", "missing-step", "alias-arity", "bad-yaml", "non-list-section",
    "context-no-cmd", "missing-microstep", "step-not-list", "bad-hook", "missing-data",
    "missing-file", "not-a-mapping", "checkpoint-keys", "malformed-entry",
    "syntax-after-subst", "undefined-var", "bad-yaml", "alias-arity", "cyclic-variable",
]  # fmt: skip


def generate(seed: int, index: int, invalid_rate: float = 0.3) -> Tree:
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))
    return Generator(rng, invalid_rate).build()


# ---------------------------------------------------------------------------------------
# Running the two tools
# ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    rc: int | None  # None: timed out
    stdout: str
    stderr: str = ""


def argv_for(mode: str, recipe: str) -> list[str]:
    return [*MODE_ARGS[mode], "-g", *PINNED, recipe]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAMELEON")}
    env.update(HOME=str(home), LC_ALL="C.UTF-8")
    return env


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


class OracleDriver:
    """Upstream in one persistent Ruby process (benchmarks/oracle_driver.rb)."""

    def __init__(self, home: Path, scratch: Path) -> None:
        self.home = home
        self.scratch = scratch
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                "ruby",
                "-r",
                str(ORACLE_ROOT / "kameleon_oracle_shim.rb"),
                "-I",
                str(ORACLE_ROOT / "lib"),
                str(DRIVER),
                str(ORACLE_ROOT / "bin" / "kameleon"),
                str(self.scratch),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_env(self.home),
        )

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def _read(self, size: int, deadline: float) -> bytes:
        assert self.proc is not None
        assert self.proc.stdout is not None
        chunks = []
        fd = self.proc.stdout.fileno()
        while size > 0:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(size, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _readline(self, deadline: float) -> bytes:
        line = b""
        while not line.endswith(b"\n"):
            line += self._read(1, deadline)
        return line

    def run(self, cwd: Path, argv: list[str]) -> Answer:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None
        assert self.proc.stdin is not None
        request = json.dumps({"cwd": str(cwd), "argv": argv}) + "\n"
        deadline = time.monotonic() + TIMEOUT
        try:
            self.proc.stdin.write(request.encode())
            self.proc.stdin.flush()
            rc, out_size, err_size = map(int, self._readline(deadline).split())
            out = self._read(out_size, deadline) if out_size else b""
            err = self._read(err_size, deadline) if err_size else b""
        except (TimeoutError, EOFError, BrokenPipeError, ValueError):
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return Answer(None, "", "driver: timeout or crash")
        return Answer(rc, _decode(out), _decode(err))


def oracle_oneshot(cwd: Path, argv: list[str], home: Path) -> Answer:
    try:
        done = subprocess.run(
            ["kameleon-oracle", *argv],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=_env(home),
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Answer(None, "", "timeout")
    return Answer(done.returncode, _decode(done.stdout), _decode(done.stderr))


class _Alarm(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise _Alarm


def run_nb(cwd: Path, argv: list[str]) -> Answer:
    """kameleon_nb's CLI in-process, as tests/corpus/compare.py runs it."""
    case = compare.Case("fuzz", "", cwd, "", tuple(argv), 0, "")
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(int(TIMEOUT))
    try:
        code, out = compare.run(case)
    except _Alarm:
        return Answer(None, "", "timeout")
    except BaseException as exc:  # a crash is an answer too
        return Answer(-1, f"<python exception {type(exc).__name__}: {exc}>\n")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return Answer(code, out)


# ---------------------------------------------------------------------------------------
# Classifying differences
# ---------------------------------------------------------------------------------------


def normalise(line: str, tree: Path) -> str:
    if str(tree) not in ("", "."):
        line = line.replace(str(tree), "<T>")
    line = re.sub(r"/tmp/kameleon-fuzz[^\s'\"\]]*", "<T>", line)
    line = re.sub(r"<T>/[^\s'\"\]):]*", "<T>/…", line)
    line = re.sub(r"conversion of \S+ into", "conversion of <X> into", line)
    line = re.sub(r"(for microstep|in macrostep file|Step|microstep) \S+", r"\1 <name>", line)
    line = re.sub(r"`(\w+!?)' for .*", r"`\1' for …", line)
    line = re.sub(r"\b[0-9a-f]{12}\b", "<ID>", line)
    line = re.sub(r"\$\$\{?[\w-]+\}?", "$$v", line)
    line = re.sub(r"'[^']*'", "'…'", line)
    line = re.sub(r'"[^"]*"', '"…"', line)
    line = re.sub(r"\d+", "N", line)
    line = re.sub(r"\s+", " ", line).strip()
    return line[:90]


DELIBERATE = ("stack level too deep", "wrong number of arguments (given 2, expected 1)")


def _error_detail(lines: list[str], tree: Path) -> str:
    """The Error line, normalised."""
    for line in lines:
        if line.startswith("Error: "):
            return normalise(line, tree)
    return "(no Error line)"


def _line_kind(line: str) -> str:
    if re.match(r"^[0-9a-f]{12} \| ", line):
        return "checkpoint table"
    if line.startswith("  --> "):
        return "dry-run microsteps"
    if line.startswith("  ") and line.rstrip().endswith(")"):
        return "dry-run macrosteps"
    if line.startswith(" -> "):
        return "info"
    return ""


def signature(up: Answer, nb: Answer, tree: Path) -> str | None:
    """A short class name for how ``nb`` differs from ``up``; None when they agree."""
    if up.rc is None or nb.rc is None:
        return f"timeout upstream={up.rc is None} nb={nb.rc is None}"
    case = compare.Case("fuzz", "", tree, "", (), up.rc, up.stdout)
    if compare.difference(case, nb.rc, nb.stdout) is None:
        return None
    up_lines = [line.rstrip() for line in up.stdout.splitlines()]
    nb_lines = [line.rstrip() for line in nb.stdout.splitlines()]
    if any(text in up.stdout for text in DELIBERATE):
        return f"deliberate: upstream {up.rc}: {_error_detail(up_lines, tree)}"
    if up.rc != 0:
        up_error = next((line for line in up_lines if line.startswith("Error: ")), "")
        nb_error = next((line for line in nb_lines if line.startswith("Error: ")), "")
        if up.rc != nb.rc or not (up_error and nb_error.startswith(up_error)):
            return f"upstream {up.rc}: {_error_detail(up_lines, tree)}"
    elif nb.rc != 0:
        return f"upstream 0, nb {nb.rc}: {_error_detail(nb_lines, tree)}"
    skip = up.rc != 0  # the Error lines matched above
    up_rest = [line for line in up_lines if not (skip and line.startswith("Error: "))]
    nb_rest = [line for line in nb_lines if not (skip and line.startswith("Error: "))]
    for mine, theirs in zip(nb_rest, up_rest, strict=False):
        if mine != theirs:
            kind = _line_kind(theirs)
            if kind == "checkpoint table" and theirs[15:] == mine[15:]:
                return "output: checkpoint ids differ"
            if kind == "info":
                key = theirs[4:].split(":", 1)[0] if ": " in theirs else "path"
                return f"output: info line differs ({normalise(key, tree)[:30]})"
            if kind:
                return f"output: {kind} differ"
            return f"output: {normalise(theirs, tree)[:60]} | nb: {normalise(mine, tree)[:60]}"
    longer = up_rest[len(nb_rest) :] or nb_rest[len(up_rest) :]
    who = "upstream" if len(up_rest) > len(nb_rest) else "nb"
    return f"output: extra lines ({who}): {normalise(longer[0], tree)}"


def class_slug(sig: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", sig.lower()).strip("-")[:60].strip("-")
    return slug + "-" + hashlib.sha1(sig.encode()).hexdigest()[:6]


# ---------------------------------------------------------------------------------------
# One case, both tools, every mode
# ---------------------------------------------------------------------------------------


@dataclass
class ModeResult:
    mode: str
    up: Answer
    nb: Answer
    sig: str | None
    nb_error: str = ""  # kameleon_nb's Error line, normalised

    def fingerprint(self) -> tuple[str | None, int | None, str]:
        """The class plus kameleon_nb's own answer: what minimising must keep."""
        return self.sig, self.nb.rc, self.nb_error


class Worker:
    def __init__(self, base: Path, oneshot: bool = False) -> None:
        self.base = base
        self.home = base / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        os.environ["HOME"] = str(self.home)
        os.environ["LC_ALL"] = "C.UTF-8"
        self.oneshot = oneshot
        self.driver = OracleDriver(self.home, base / "driver")
        self.counter = 0
        self.time_upstream = 0.0  # seconds spent in each tool
        self.time_nb = 0.0

    def oracle(self, cwd: Path, argv: list[str]) -> Answer:
        if self.oneshot:
            return oracle_oneshot(cwd, argv, self.home)
        return self.driver.run(cwd, argv)

    def fresh_dir(self) -> Path:
        self.counter += 1
        path = self.base / "t" / str(self.counter)
        path.mkdir(parents=True)
        return path

    def run_tree(
        self, tree: Tree, modes: list[str], check_driver: bool = False
    ) -> list[ModeResult]:
        root = self.fresh_dir()
        try:
            tree.write(root)
            results = []
            for mode in modes:
                argv = argv_for(mode, tree.recipe)
                clock = time.perf_counter()
                up = self.oracle(root, argv)
                self.time_upstream += time.perf_counter() - clock
                if check_driver:
                    other = oracle_oneshot(root, argv, self.home)
                    same = (other.rc, other.stdout) == (up.rc, up.stdout)
                    sig = None if same else f"driver != one-shot: rc {up.rc}/{other.rc}"
                    results.append(ModeResult(mode, other, up, sig))
                    continue
                clock = time.perf_counter()
                nb = run_nb(root, argv)
                self.time_nb += time.perf_counter() - clock
                nb_error = next(
                    (line for line in nb.stdout.splitlines() if line.startswith("Error: ")), ""
                )
                results.append(
                    ModeResult(
                        mode, up, nb, signature(up, nb, root), normalise(nb_error, root)[:60]
                    )
                )
            return results
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def close(self) -> None:
        self.driver.stop()


_WORKER: Worker | None = None
_OPTIONS: dict[str, object] = {}


def _init_worker(base: str, options: dict[str, object]) -> None:
    global _WORKER  # noqa: PLW0603  (one per worker process)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _OPTIONS.update(options)
    _WORKER = Worker(Path(base) / f"w{os.getpid()}", bool(options["oneshot"]))


def _task(index: int) -> tuple[int, Tree, list[ModeResult], float, float]:
    assert _WORKER is not None
    tree = generate(int(_OPTIONS["seed"]), index, float(_OPTIONS["invalid_rate"]))  # type: ignore[arg-type]
    modes = list(_OPTIONS["modes"])  # type: ignore[call-overload]
    up, nb = _WORKER.time_upstream, _WORKER.time_nb
    results = _WORKER.run_tree(tree, modes, bool(_OPTIONS["check_driver"]))
    return index, tree, results, _WORKER.time_upstream - up, _WORKER.time_nb - nb


# ---------------------------------------------------------------------------------------
# Minimising and recording
# ---------------------------------------------------------------------------------------


def ddmin(items: list[str], keep: Callable[[list[str]], bool]) -> list[str]:
    """Delta debugging: a small sublist of ``items`` for which ``keep`` still holds."""
    chunks = 2
    while len(items) >= 2:
        size = max(1, len(items) // chunks)
        reduced = False
        for start in range(0, len(items), size):
            candidate = items[:start] + items[start + size :]
            if candidate and keep(candidate):
                items = candidate
                chunks = max(chunks - 1, 2)
                reduced = True
                break
        if not reduced:
            if size == 1:
                break
            chunks = min(len(items), chunks * 2)
    return items


def minimise(tree: Tree, mode: str, worker: Worker) -> Tree:
    """Drop files, then lines, while ``mode`` still gives the same class and the same
    answer from kameleon_nb (so an unrelated difference cannot take the case over)."""
    calls = 0
    target = worker.run_tree(tree, [mode])[0].fingerprint()

    def same_class(candidate: Tree) -> bool:
        nonlocal calls
        calls += 1
        return worker.run_tree(candidate, [mode])[0].fingerprint() == target

    current = Tree(dict(tree.files), tree.recipe)
    for _ in range(3):
        before = dict(current.files)
        for rel in sorted(current.files):
            if rel == current.recipe:
                continue
            files = {k: v for k, v in current.files.items() if k != rel}
            if same_class(Tree(files, current.recipe)):
                current = Tree(files, current.recipe)
        for rel in sorted(current.files):
            content = current.files[rel]
            if isinstance(content, bytes):
                continue
            lines = content.split("\n")

            def keep(candidate: list[str], rel: str = rel, base: Tree = current) -> bool:
                files = dict(base.files)
                files[rel] = "\n".join(candidate)
                return same_class(Tree(files, base.recipe))

            if keep([""]):
                current.files[rel] = ""
                continue
            current.files[rel] = "\n".join(ddmin(lines, keep))
        if current.files == before:
            break
    print(f"minimised with {calls} runs", file=sys.stderr)
    return current


def read_tree(directory: Path, recipe: str) -> Tree:
    files: dict[str, str | bytes] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name not in ("expected.json", "meta.json"):
            rel = str(path.relative_to(directory))
            data = path.read_bytes()
            try:
                files[rel] = data.decode("utf-8")
            except UnicodeDecodeError:
                files[rel] = data
    return Tree(files, recipe)


def record_case(tree: Tree, name: str, home: Path) -> dict[str, object]:
    """Write ``tests/data/fuzz/NAME`` and upstream's answers, recorded at CASES_ROOT/NAME."""
    target = FUZZ_DATA / name
    at = CASES_ROOT / name
    for path in (target, at):
        if path.exists():
            shutil.rmtree(path)
    tree.write(target)
    tree.write(at)
    record: dict[str, object] = {
        "recipe": tree.recipe,
        "tree": str(at),
        "pinned": PINNED,
        "modes": {},
    }
    for mode in MODE_ARGS:
        argv = argv_for(mode, tree.recipe)
        answer = oracle_oneshot(at, argv, home)
        record["modes"][mode] = {  # type: ignore[index]
            "argv": ["kameleon", *argv],
            "rc": answer.rc,
            "stdout": answer.stdout,
            "stderr": answer.stderr,
        }
    (target / "expected.json").write_text(
        json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    shutil.rmtree(at, ignore_errors=True)
    failing = [f"{name}[{mode}]" for mode in nb_failures(target)]
    for mode, answer in record["modes"].items():  # type: ignore[attr-defined]
        verdict = "DIFFERS" if f"{name}[{mode}]" in failing else "same"
        print(f"  {name}[{mode}]: upstream rc {answer['rc']}, kameleon_nb {verdict}")
    return {"failing": failing}


# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------


@dataclass
class ClassStats:
    count: int = 0
    modes: Counter[str] = field(default_factory=Counter)
    examples: list[tuple[int, int, str, Tree, ModeResult]] = field(default_factory=list)


def cmd_run(args: argparse.Namespace) -> int:
    if args.nb_path:
        sys.path.insert(0, str(Path(args.nb_path).resolve()))
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if mode not in MODE_ARGS:
            raise SystemExit(f"unknown mode {mode!r} (known: {', '.join(MODE_ARGS)})")
    base = Path(tempfile.mkdtemp(prefix="kameleon-fuzz-"))
    options = {
        "seed": args.seed,
        "modes": modes,
        "oneshot": args.oneshot,
        "check_driver": args.check_driver,
        "invalid_rate": args.invalid_rate,
    }
    classes: dict[str, ClassStats] = {}
    identical = generated = 0
    features: Counter[str] = Counter()
    upstream_rc: Counter[int | None] = Counter()
    time_up = time_nb = 0.0
    start = time.perf_counter()
    indices = range(args.start, args.start + args.count)
    pool = None
    try:
        if args.jobs > 1:
            pool = multiprocessing.get_context("fork").Pool(
                args.jobs, _init_worker, (str(base), options)
            )
            stream: Iterator[tuple[int, Tree, list[ModeResult], float, float]] = (
                pool.imap_unordered(_task, indices, chunksize=4)
            )
        else:
            _init_worker(str(base), options)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            stream = (_task(i) for i in indices)
        for index, tree, results, spent_up, spent_nb in stream:
            generated += 1
            time_up += spent_up
            time_nb += spent_nb
            features.update(tree.features)
            for result in results:
                upstream_rc[result.up.rc] += 1
            # a recipe's class: the first differing mode, in the order d, info, l, lc
            differing = sorted(
                (r for r in results if r.sig is not None), key=lambda r: MODE_ORDER.index(r.mode)
            )
            same = not differing
            if differing:
                first = differing[0]
                assert first.sig is not None
                stats = classes.setdefault(first.sig, ClassStats())
                stats.count += 1
                stats.modes.update(r.mode for r in differing)
                size = sum(len(v) for v in tree.files.values())
                stats.examples.append((size, index, first.mode, tree, first))
                stats.examples.sort(key=lambda e: e[0])
                del stats.examples[args.keep :]
            identical += same
            if args.progress and generated % args.progress == 0:
                rate = generated / (time.perf_counter() - start)
                print(
                    f"... {generated} recipes, {identical} identical, {len(classes)} classes,"
                    f" {rate:.1f} recipes/s",
                    file=sys.stderr,
                )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if _WORKER is not None:
            _WORKER.close()
        shutil.rmtree(base, ignore_errors=True)
    elapsed = time.perf_counter() - start
    if args.out and classes:
        out = Path(args.out)
        marker = out / ".kameleon-fuzz-out"
        if out.exists() and any(out.iterdir()) and not marker.exists():
            raise SystemExit(f"{out} is not empty and was not written by this fuzzer")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        marker.touch()
        for sig, stats in classes.items():
            class_dir = out / class_slug(sig)
            for _size, index, mode, tree, result in stats.examples:
                case_dir = class_dir / f"{index}-{mode}"
                tree.write(case_dir)
                meta = {
                    "signature": sig,
                    "seed": args.seed,
                    "index": index,
                    "mode": mode,
                    "recipe": tree.recipe,
                    "argv": argv_for(mode, tree.recipe),
                    "features": sorted(tree.features),
                    "upstream": {"rc": result.up.rc, "stdout": result.up.stdout},
                    "nb": {"rc": result.nb.rc, "stdout": result.nb.stdout},
                }
                (case_dir / "meta.json").write_text(
                    json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
                )
    calls = generated * len(modes)
    print(f"\n{generated} recipes generated ({calls} runs per tool), {elapsed:.1f} s")
    if generated and time_up and time_nb:
        oracle = "kameleon-oracle one-shot" if args.oneshot else "upstream (driver)"
        print(
            f"throughput, all {len(modes)} modes per recipe: {oracle} {generated / time_up:.1f}"
            f" recipes/s, kameleon_nb in-process {generated / time_nb:.1f} recipes/s"
        )
    print(f"{identical} identical in every mode, {generated - identical} with a difference")
    print(
        "upstream exit codes: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(upstream_rc.items(), key=str))
    )
    if args.features:
        print("features: " + ", ".join(f"{k} {v}" for k, v in sorted(features.items())))
    print(f"{len(classes)} difference classes (recipes, [modes that differ in them]):")
    for sig, stats in sorted(classes.items(), key=lambda kv: -kv[1].count):
        modes_text = ",".join(f"{m}:{n}" for m, n in sorted(stats.modes.items()))
        where = f"  -> {Path(args.out) / class_slug(sig)}" if args.out else ""
        print(f"  {stats.count:5d}  [{modes_text}]  {sig}{where}")
    return 0


def cmd_check_corpus(args: argparse.Namespace) -> int:
    """The driver against upstream's recorded answers on the real collections."""
    home = Path(tempfile.mkdtemp(prefix="kameleon-fuzz-home-"))
    driver = OracleDriver(home, home / "driver")
    same = total = 0
    try:
        for case in compare.prepare():
            total += 1
            answer = driver.run(case.tree, list(case.argv))
            if (answer.rc, answer.stdout) == (case.rc, case.stdout):
                same += 1
            else:
                print(
                    f"--- {case.name}: driver rc {answer.rc}, recorded {case.rc}", file=sys.stderr
                )
    finally:
        driver.stop()
        shutil.rmtree(home, ignore_errors=True)
    print(f"driver byte-identical to the recorded answers: {same}/{total}")
    return 0 if same == total else 1


def _meta(source: Path) -> dict[str, object]:
    """An example's meta.json; a hand-written case directory needs only an r.yaml."""
    path = source / "meta.json"
    if path.is_file():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    recipes = sorted(source.rglob("r.yaml"), key=lambda p: len(p.parts))
    recipe = str(recipes[0].relative_to(source)) if recipes else "r.yaml"
    return {"recipe": recipe, "mode": "d", "signature": None}


def cmd_show(args: argparse.Namespace) -> int:
    """Both tools on a case directory, every mode: the class and the two answers."""
    source = Path(args.case)
    meta = _meta(source)
    tree = read_tree(source, str(meta["recipe"]))
    base = Path(tempfile.mkdtemp(prefix="kameleon-fuzz-"))
    worker = Worker(base)
    try:
        for result in worker.run_tree(tree, list(MODE_ARGS)):
            print(f"=== [{result.mode}] {result.sig or 'same'}")
            if result.sig or args.verbose:
                print(f"--- upstream rc {result.up.rc}\n{result.up.stdout}", end="")
                print(f"--- kameleon_nb rc {result.nb.rc}\n{result.nb.stdout}", end="")
    finally:
        worker.close()
        shutil.rmtree(base, ignore_errors=True)
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    source = Path(args.case)
    meta = _meta(source)
    tree = read_tree(source, str(meta["recipe"]))
    base = Path(tempfile.mkdtemp(prefix="kameleon-fuzz-"))
    worker = Worker(base)
    try:
        if not args.no_minimize:
            check = worker.run_tree(tree, [meta["mode"]])[0]
            if check.sig != meta["signature"]:
                print(f"warning: the example now gives {check.sig!r}", file=sys.stderr)
            tree = minimise(tree, meta["mode"], worker)
        tree.files = {k: v for k, v in tree.files.items() if k == tree.recipe or v != ""}
        result = record_case(tree, args.name, worker.home)
    finally:
        worker.close()
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(result))
    return 0


def cmd_minimize(args: argparse.Namespace) -> int:
    """Shrink an example into a new example directory (to look at before recording)."""
    source = Path(args.case)
    meta = json.loads((source / "meta.json").read_text(encoding="utf-8"))
    tree = read_tree(source, meta["recipe"])
    base = Path(tempfile.mkdtemp(prefix="kameleon-fuzz-"))
    worker = Worker(base)
    try:
        tree = minimise(tree, args.mode or meta["mode"], worker)
        tree.files = {k: v for k, v in tree.files.items() if k == tree.recipe or v != ""}
        result = worker.run_tree(tree, [args.mode or meta["mode"]])[0]
    finally:
        worker.close()
        shutil.rmtree(base, ignore_errors=True)
    into = Path(args.into)
    if into.exists():
        shutil.rmtree(into)
    tree.write(into)
    meta.update(
        mode=result.mode,
        signature=result.sig,
        upstream={"rc": result.up.rc, "stdout": result.up.stdout},
        nb={"rc": result.nb.rc, "stdout": result.nb.stdout},
    )
    (into / "meta.json").write_text(
        json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"{into}: {result.sig}")
    return 0


def nb_failures(case_dir: Path) -> list[str]:
    """The modes of a recorded case that kameleon_nb still answers differently."""
    record = json.loads((case_dir / "expected.json").read_text(encoding="utf-8"))
    tree = Path(record["tree"])
    if tree.exists():
        shutil.rmtree(tree)
    read_tree(case_dir, record["recipe"]).write(tree)
    failing = []
    try:
        for mode, answer in record["modes"].items():
            nb = run_nb(tree, answer["argv"][1:])
            case = compare.Case(
                "fuzz", record["recipe"], tree, mode, (), answer["rc"], answer["stdout"]
            )
            rc = nb.rc if nb.rc is not None else -2
            if compare.difference(case, rc, nb.stdout) is not None:
                failing.append(mode)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    return failing


def cmd_xfail_list(args: argparse.Namespace) -> int:
    """The XFAIL entries of tests/corpus/test_fuzz_cases.py for the current kameleon_nb."""
    home = Path(tempfile.mkdtemp(prefix="kameleon-fuzz-home-"))
    os.environ["HOME"] = str(home)
    try:
        for expected in sorted(FUZZ_DATA.glob("*/expected.json")):
            failing = nb_failures(expected.parent)
            if failing:
                print(f'    "{expected.parent.name}[{",".join(failing)}]",')
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return 0


def cmd_rerecord(args: argparse.Namespace) -> int:
    base = Path(tempfile.mkdtemp(prefix="kameleon-fuzz-"))
    home = base / "home"
    home.mkdir()
    os.environ["HOME"] = str(home)
    failing: list[str] = []
    try:
        for directory in args.cases:
            path = Path(directory)
            expected = json.loads((path / "expected.json").read_text(encoding="utf-8"))
            tree = read_tree(path, expected["recipe"])
            failing += record_case(tree, path.name, home)["failing"]  # type: ignore[operator]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("failing:", json.dumps(failing))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        argv = ["run", *argv]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate and compare (the default)")
    run.add_argument("--count", type=int, default=200)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--start", type=int, default=0, help="first recipe index")
    run.add_argument("--jobs", type=int, default=1)
    run.add_argument("--modes", default="d,l,lc,info")
    run.add_argument("--out", default="/tmp/kameleon-fuzz-out", help="'' to write nothing")
    run.add_argument("--keep", type=int, default=3, help="examples kept per class (smallest)")
    run.add_argument("--invalid-rate", type=float, default=0.3)
    run.add_argument("--oneshot", action="store_true", help="one kameleon-oracle per call")
    run.add_argument("--check-driver", action="store_true", help="driver against one-shot")
    run.add_argument("--features", action="store_true", help="print generator feature counts")
    run.add_argument("--progress", type=int, default=100, help="report every N recipes")
    run.add_argument("--nb-path", help="import kameleon_nb from this directory (a snapshot)")
    run.set_defaults(func=cmd_run)
    corpus = sub.add_parser("check-corpus", help="driver against the recorded corpus answers")
    corpus.set_defaults(func=cmd_check_corpus)
    record = sub.add_parser("record", help="minimise an example and record it as a test case")
    record.add_argument("case", help="an example directory written by a run (has meta.json)")
    record.add_argument("--name", required=True)
    record.add_argument("--no-minimize", action="store_true")
    record.set_defaults(func=cmd_record)
    show = sub.add_parser("show", help="run both tools on a case directory, every mode")
    show.add_argument("case")
    show.add_argument("-v", "--verbose", action="store_true", help="print equal answers too")
    show.set_defaults(func=cmd_show)
    minimize = sub.add_parser("minimize", help="shrink an example into a new directory")
    minimize.add_argument("case", help="an example directory written by a run (has meta.json)")
    minimize.add_argument("--into", required=True)
    minimize.add_argument("--mode", choices=list(MODE_ARGS))
    minimize.set_defaults(func=cmd_minimize)
    xfail = sub.add_parser("xfail-list", help="print test_fuzz_cases.py's XFAIL entries")
    xfail.set_defaults(func=cmd_xfail_list)
    rerecord = sub.add_parser("rerecord", help="record upstream's answers again")
    rerecord.add_argument("cases", nargs="+")
    rerecord.set_defaults(func=cmd_rerecord)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
