"""The command blocks of README.md and docs/partners.md run as written against a live server.

How the documents mark their blocks (the markers are HTML comments, invisible on GitHub):

* ```` ```sh ```` blocks are commands a reader types; every one is executed, unless the line
  before it is ``<!-- readme-test: skip REASON -->`` (only for blocks that start or test the
  server itself; a skipped block may not call the API).
* ```` ```text ```` / ```` ```json ```` blocks are never executed. Preceded by
  ``<!-- readme-test: output -->`` they show the output of the ``sh`` block before them, and
  ``<!-- readme-test: server output -->`` what the server (``booking up``: API and worker)
  prints on its console. Each line of such a block must match a line of the real output, in
  order; ``…`` stands for anything, and a line that is only ``…`` matches nothing.
* No other fences: an unlabelled or ``bash``/``console`` block fails this test, so every
  command block is classified.

The server is started the way the README says (``scripts/dev.sh run`` runs ``booking up``):
``.venv/bin/booking up --port N`` on a free port with its own database and Redis database.
Placeholders in blocks are the labels of ``booking up``'s output (``<demo business>``,
``<manager key>``, ...) and are replaced with the values it printed, exactly as a reader
copies them; the README's address ``http://127.0.0.1:8000`` becomes the test server's.
Each section (heading) runs in a fresh ``bash`` with ``set -euo pipefail`` and no variables
from other sections, so a section that uses ``$BIZ`` must set it itself; ``.venv/bin`` is
not on ``PATH``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import ROOT, _recreate_database

DOCUMENTS = ("README.md", "docs/partners.md")
README_ADDRESS = "http://127.0.0.1:8000"
MARKER = re.compile(r"^<!--\s*readme-test:\s*(skip|output|server output)\b\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^```(.*)$")
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
PLACEHOLDER = re.compile(r"<([a-z][a-z ]*[a-z])>")
ELLIPSIS = "…"
README_DB = "booking_readme"
README_REDIS_DB = 7
BLOCK_TIMEOUT = 120  # seconds; a hung block fails instead of stalling the suite
SERVER_OUTPUT_WAIT = 60  # seconds the worker has to print what a block makes it send


@dataclass
class Block:
    document: str
    line: int
    language: str
    text: str
    marker: str | None = None
    reason: str = ""


@dataclass
class Section:
    document: str
    title: str
    blocks: list[Block] = field(default_factory=list)

    @property
    def runnable(self) -> list[Block]:
        return [b for b in self.blocks if b.language == "sh" and b.marker != "skip"]


def parse(document: str) -> list[Section]:
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    sections = [Section(document, "(top)")]
    marker: tuple[str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE.match(line)
        if fence:
            language = fence.group(1).strip()
            start = index + 1
            index += 1
            while index < len(lines) and lines[index] != "```":
                index += 1
            body = "\n".join(lines[start:index])
            kind, reason = marker if marker else (None, "")
            sections[-1].blocks.append(Block(document, start, language, body, kind, reason))
            marker = None
        elif (heading := HEADING.match(line)) is not None:
            sections.append(Section(document, heading.group(2)))
        elif (found := MARKER.match(line)) is not None:
            marker = (found.group(1), found.group(2))
        elif line.strip():
            marker = None
        index += 1
    return [s for s in sections if s.blocks]


SECTIONS = [section for document in DOCUMENTS for section in parse(document)]
RUNNABLE = [section for section in SECTIONS if section.runnable]


def pattern(sample_line: str) -> re.Pattern[str]:
    """``…`` is a wildcard; any run of whitespace matches any run of whitespace."""
    pieces = [
        r"\s+".join(re.escape(word) for word in part.split())
        for part in sample_line.strip().split(ELLIPSIS)
    ]
    return re.compile(".*?".join(pieces))


def unmatched(sample: str, actual: str) -> list[str]:
    """Sample lines (with … wildcards) not found in order among the actual lines."""
    actual_lines = actual.splitlines()
    position = 0
    missing = []
    for raw in sample.splitlines():
        if raw.strip() in ("", ELLIPSIS):
            continue
        wanted = pattern(raw)
        for offset, candidate in enumerate(actual_lines[position:]):
            if wanted.search(candidate):
                position += offset + 1
                break
        else:
            missing.append(raw)
    return missing


class Server:
    """``booking up`` as a reader starts it, with its console captured line by line."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "booking"), "up", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def output(self, since: int = 0) -> str:
        with self._changed:
            return "\n".join(self.lines[since:])

    def wait_for(self, sample: str, since: int, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        with self._changed:
            while True:
                missing = unmatched(sample, "\n".join(self.lines[since:]))
                left = deadline - time.monotonic()
                if not missing or left <= 0 or self.process.poll() is not None:
                    return missing
                self._changed.wait(min(left, 0.5))

    def value(self, label: str) -> str:
        """The value ``booking up`` printed after ``label`` (its first word)."""
        found = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", self.output(), re.MULTILINE)
        assert found, f"booking up printed no {label!r} line:\n{self.output()}"
        return found.group(1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # booking up stops API and worker
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _with_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _reader_env(home: Path) -> dict[str, str]:
    """A reader's shell: no variables of this test session, no .venv on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    path = [d for d in os.environ.get("PATH", "/usr/bin:/bin").split(":") if d != venv_bin]
    env = {
        "PATH": ":".join(path),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": os.environ.get("TZ", "UTC"),
    }
    # The same local stack as the test session, on its own database and Redis database.
    database_url = _with_path(os.environ["DATABASE_URL"], f"/{README_DB}")
    redis_url = _with_path(os.environ["REDIS_URL"], f"/{README_REDIS_DB}")
    env["DATABASE_URL"] = database_url
    env["REDIS_URL"] = redis_url
    env["BOOKING_LOCAL_PG_PORT"] = str(urlsplit(database_url).port)
    env["BOOKING_LOCAL_REDIS_PORT"] = str(urlsplit(redis_url).port)
    return env


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(scope="module")
def reader_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _reader_env(tmp_path_factory.mktemp("reader-home"))


@pytest.fixture(scope="module")
def server(reader_env: dict[str, str]) -> Iterator[Server]:
    _recreate_database(reader_env["DATABASE_URL"])
    _flush_redis(reader_env["REDIS_URL"])
    started = Server(reader_env, _free_port())
    try:
        deadline = time.monotonic() + 180
        while True:
            assert started.process.poll() is None, f"booking up exited:\n{started.output()}"
            try:
                if httpx.get(f"{started.base_url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready:\n{started.output()}"
            time.sleep(0.3)
        yield started
    finally:
        started.stop()
        _flush_redis(reader_env["REDIS_URL"])


def test_every_block_is_classified() -> None:
    blocks = [block for section in SECTIONS for block in section.blocks]
    assert len(blocks) >= 10
    unlabelled = [
        f"{b.document}:{b.line} ```{b.language}"
        for b in blocks
        if b.language not in ("sh", "text", "json")
    ]
    assert unlabelled == [], "label every fence sh (run), text or json (never run)"
    skipped = [b for b in blocks if b.marker == "skip"]
    for block in skipped:
        assert block.language == "sh", f"{block.document}:{block.line}"
        assert block.reason, f"{block.document}:{block.line}: say why it is skipped"
        assert "curl" not in block.text, "API walkthroughs must run: do not skip them"
    for block in blocks:
        if block.marker in ("output", "server output"):
            assert block.language in ("text", "json"), f"{block.document}:{block.line}"


def test_placeholders_are_labels_of_the_run_output() -> None:
    """A placeholder must be a value `booking up` prints, so a reader can copy it."""
    labels = {"demo business", "front desk key", "manager key", "partner key"}
    used = {
        name
        for section in RUNNABLE
        for block in section.runnable
        for name in PLACEHOLDER.findall(block.text)
    }
    assert used <= labels, f"placeholders the run output does not print: {used - labels}"


def _at(server: Server, text: str) -> str:
    """The README's address replaced with the test server's."""
    return text.replace(README_ADDRESS, server.base_url).replace(
        "localhost:8000", server.base_url.removeprefix("http://")
    )


def _script(section: Section, server: Server) -> list[tuple[Block, str]]:
    def fill(text: str) -> str:
        return _at(server, PLACEHOLDER.sub(lambda m: server.value(m.group(1)), text))

    return [(block, fill(block.text)) for block in section.runnable]


def _expected_after(section: Section, block: Block) -> list[Block]:
    following = section.blocks[section.blocks.index(block) + 1 :]
    samples = []
    for candidate in following:
        if candidate.language == "sh":
            break
        if candidate.marker in ("output", "server output"):
            samples.append(candidate)
    return samples


def test_run_output_sample_matches_booking_up(server: Server) -> None:
    samples = [
        block
        for section in SECTIONS
        for block in section.blocks
        if block.marker == "server output" and "API" in block.text and "key" in block.text
    ]
    assert samples, "the README shows what `scripts/dev.sh run` prints"
    for sample in samples:
        assert unmatched(_at(server, sample.text), server.output()) == [], server.output()


BLOCK_DONE = "@@readme-test block done"


@pytest.mark.parametrize("section", RUNNABLE, ids=[f"{s.document}: {s.title}" for s in RUNNABLE])
def test_section_runs_as_written(
    section: Section, server: Server, reader_env: dict[str, str]
) -> None:
    """The section's blocks, in order, in one shell (a reader pasting them into a terminal)."""
    blocks = _script(section, server)
    script = "set -euo pipefail\n" + "".join(
        f"{text}\nprintf '\\n{BLOCK_DONE}\\n'\n" for _, text in blocks
    )
    since = len(server.lines)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=reader_env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    outputs = result.stdout.split(f"\n{BLOCK_DONE}\n")
    done = len(outputs) - 1
    if result.returncode != 0:
        block, text = blocks[min(done, len(blocks) - 1)]
        pytest.fail(
            f"{block.document}:{block.line} ({section.title}) exited {result.returncode}\n"
            f"--- block\n{text}\n--- stdout\n{outputs[-1]}\n--- stderr\n{result.stderr}"
        )
    assert done == len(blocks)
    for (block, _), output in zip(blocks, outputs, strict=False):
        for sample in _expected_after(section, block):
            if sample.marker == "output":
                missing = unmatched(_at(server, sample.text), output)
                actual = output
            else:
                missing = server.wait_for(_at(server, sample.text), since, SERVER_OUTPUT_WAIT)
                actual = server.output(since)
            assert missing == [], (
                f"{block.document}:{sample.line}: the sample does not match the real output of"
                f" the block at line {block.line}; missing {missing}\n--- actual\n{actual}"
            )
