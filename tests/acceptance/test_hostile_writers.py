"""The commands that write users' files, tried as a hostile user would: `dfr fmt`,
`dfr init`, `dfr state migrate --to FILE`, and those that read them for a commit
(`dfr pre-commit`, `dfr diff`). docs/reliability.md, "Commands that write your files".

Every refusal is one line and exit 1; no file of the user's loses a byte it
should keep: fmt moves whole lines and nothing else.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.runner import Runner, apply_args
from support.subproc import run_text
from support.workspace import Workspace, manifest_text

from reconciler.commands import fmt as fmt_module
from reconciler.commands.init import PRE_COMMIT
from reconciler.keyorder import format_text, split_lines
from reconciler.validate import validate_paths

SPEC = "3c90c3cc-0d44-4b50-8888-8dd25736052a"

#: Comments everywhere: above the first `---`, after it, at the end of lines, inside a
#: flow mapping, between documents, in a document that is not a manifest.
COMMENTED = f"""\
# head comment 1

# head comment 2, after a blank line
---
# after the document start
kind: GenerationRun   # eol kind
apiVersion: dataframer.ai/v1 # eol api
metadata: {{name: flowy,   # inside a flow mapping
   labels: {{team: a}}}}  # after the flow mapping
spec:
  # above samples
  number_of_samples: 10 # eol samples
  spec_id: {SPEC}
  # above version
  spec_version: 1
  # the end of spec
# between documents
---
# not a manifest
b: 1 # b first
a:
- x   # item, not re-indented
- y
# end of file
"""

COMMENTED_TIDY = f"""\
# head comment 1

# head comment 2, after a blank line
---
# after the document start
apiVersion: dataframer.ai/v1 # eol api
kind: GenerationRun   # eol kind
metadata: {{name: flowy,   # inside a flow mapping
   labels: {{team: a}}}}  # after the flow mapping
spec:
  spec_id: {SPEC}
  # above version
  spec_version: 1
  # above samples
  number_of_samples: 10 # eol samples
  # the end of spec
# between documents
---
# not a manifest
b: 1 # b first
a:
- x   # item, not re-indented
- y
# end of file
"""

HEAD = "metadata:\n  name: messy\nspec:\n"
KIND, API = "kind: GenerationRun\n", "apiVersion: dataframer.ai/v1\n"
MESSY = f"{KIND}{API}{HEAD}  number_of_samples: 10\n  spec_id: {SPEC}\n"
TIDY = f"{API}{KIND}{HEAD}  spec_id: {SPEC}\n  number_of_samples: 10\n"


def _write(ws: Workspace, name: str, data: bytes | str) -> Path:
    path = ws.manifests / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# -- fmt: what a file holds ------------------------------------------------------------


def test_fmt_keeps_every_comment_and_leaves_other_documents_as_written(
    ws: Workspace, dfr: Runner
) -> None:
    """The round trip through ruamel dropped the comments above `---` and inside the flow
    mapping, re-indented the other document's list and moved `# above samples` to spec_id."""
    path = _write(ws, "c.yaml", COMMENTED)
    code, out, err = dfr("fmt", "manifests")
    assert code == 0 and out == "reformatted manifests/c.yaml\n", err
    assert path.read_text() == COMMENTED_TIDY
    assert dfr("fmt", "--check", "manifests").code == 0
    assert dfr("validate", "manifests").code == 0


def test_fmt_keeps_crlf_a_byte_order_mark_and_a_missing_final_newline(
    ws: Workspace, dfr: Runner
) -> None:
    """fmt read text with universal newlines and wrote LF without the BOM: every line of a
    Windows user's file changed."""
    crlf = _write(ws, "crlf.yaml", MESSY.replace("\n", "\r\n")[:-2])  # no final newline
    bom = _write(ws, "bom.yaml", b"\xef\xbb\xbf" + MESSY.replace("messy", "bom").encode())
    code, _, err = dfr("fmt", "manifests")
    assert code == 0, err
    assert crlf.read_bytes() == TIDY.replace("\n", "\r\n")[:-2].encode()
    assert bom.read_bytes() == b"\xef\xbb\xbf" + TIDY.replace("messy", "bom").encode()
    assert dfr("fmt", "--check", "manifests").code == 0


def test_fmt_moves_only_lines_long_unicode_anchored_block_and_tabbed(
    ws: Workspace, dfr: Runner
) -> None:
    long_value = "word " * 2000 + "end"  # ruamel folded plain scalars past 4,096 columns
    text = (
        "kind: GenerationRun   \n"  # trailing spaces
        "apiVersion: dataframer.ai/v1\n"
        "metadata:\n"
        '  labels:\n    équipe: &t "données ✓"\t# a tab before the comment\n'
        "    copy: *t\n"
        "  name: ünïcode\n"
        "spec:\n"
        "  seed_instructions: |+\n    keep\n    # not a comment: part of the text\n\n"
        f"  expected_output: {long_value}\n"
        f"  spec_id: {SPEC}\n"
    )
    path = _write(ws, "odd.yaml", text)
    before = dfr("validate", "manifests")
    code, _, err = dfr("fmt", "manifests")
    assert code == 0, err
    new = path.read_text()
    assert sorted(new.splitlines()) == sorted(text.splitlines()) and new != text
    assert new.startswith("apiVersion: dataframer.ai/v1\nkind: GenerationRun   \nmetadata:\n")
    assert "  name: ünïcode\n  labels:\n" in new and f"{long_value}\n" in new
    assert dfr("validate", "manifests").code == before.code


def test_fmt_moves_a_key_whose_last_line_is_an_alias(ws: Workspace, dfr: Runner) -> None:
    """An alias's node is its anchor's: the document's end was read from the anchor's
    place, and `    - *a` was left behind."""
    text = f"{KIND}apiVersion: &a dataframer.ai/v1\n{HEAD}  spec_id: {SPEC}\n"
    text = text.replace(HEAD, "spec:\n") + "metadata:\n  name: a\n  labels:\n    - *a\n"
    path = _write(ws, "alias.yaml", text)
    assert dfr("fmt", "manifests").code == 0
    assert path.read_text() == (
        f"apiVersion: &a dataframer.ai/v1\n{KIND}metadata:\n  name: a\n  labels:\n"
        f"    - *a\nspec:\n  spec_id: {SPEC}\n"
    )


def test_fmt_leaves_a_file_whose_reordering_would_change_its_values(
    ws: Workspace, dfr: Runner
) -> None:
    text = (
        "apiVersion: dataframer.ai/v1\nkind: GenerationRun\n"
        f"spec:\n  spec_id: {SPEC}\n  generation_model: &m anthropic/claude-sonnet-4-5\n"
        "metadata:\n  name: alias\n  labels:\n    model: *m\n"
    )
    path = _write(ws, "alias.yaml", text)
    code, _, err = dfr("fmt", "manifests")
    assert code == 1 and "manifests/alias.yaml: not formatted: its keys cannot be" in err
    assert path.read_text() == text
    assert dfr("fmt", "--check", "manifests").code == 1


@pytest.mark.parametrize(
    "text",
    [
        "kind: GenerationRun\napiVersion: dataframer.ai/v1\nmetadata:\n\tname: tab\n",
        "kind: GenerationRun\napiVersion: dataframer.ai/v1\nmetadata: [unclosed\n",
        "kind: GenerationRun\r\napiVersion: dataframer.ai/v1\r\nkind: twice\r\n",
    ],
    ids=["tab-indent", "unclosed", "duplicate-key-crlf"],
)
def test_fmt_leaves_a_file_that_does_not_parse_byte_identical(
    ws: Workspace, dfr: Runner, text: str
) -> None:
    path = _write(ws, "bad.yaml", b"\xef\xbb\xbf" + text.encode())
    stamp = path.stat().st_mtime_ns
    code, _, err = dfr("fmt", "manifests")
    assert code == 1 and "manifests/bad.yaml:" in err and "not formatted" in err
    assert path.read_bytes() == b"\xef\xbb\xbf" + text.encode()
    assert path.stat().st_mtime_ns == stamp


# -- fmt: how a file is written --------------------------------------------------------


def test_fmt_refuses_a_read_only_file(ws: Workspace, dfr: Runner) -> None:
    """A file without write permission was replaced anyway (the rename only needs the
    folder): chmod a-w did not protect it."""
    path = _write(ws, "ro.yaml", MESSY)
    path.chmod(0o444)
    code, out, err = dfr("fmt", "manifests")
    assert code == 1 and out == ""
    assert "manifests/ro.yaml: not formatted: the file is read-only" in err
    assert path.read_text() == MESSY and stat.S_IMODE(path.stat().st_mode) == 0o444
    code, out, _ = dfr("fmt", "--check", "manifests")
    assert code == 1 and out == "would reformat manifests/ro.yaml\n"


def test_fmt_keeps_mode_and_owner(ws: Workspace, dfr: Runner) -> None:
    path = _write(ws, "m.yaml", MESSY)
    path.chmod(0o640)
    if os.geteuid() == 0:  # as root the new file was root's: the user lost their file
        os.chown(path, 65534, 65534)
    before = path.stat()
    assert dfr("fmt", "manifests").code == 0
    after = path.stat()
    assert path.read_text() == TIDY
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (
        before.st_uid,
        before.st_gid,
        0o640,
    )


def test_fmt_never_writes_through_what_is_in_its_temporary_name(ws: Workspace, dfr: Runner) -> None:
    """`FILE.dfr-fmt.tmp` was opened with a plain open(): a link there was written through
    (the file it pointed to overwritten) and then renamed over the manifest."""
    path = _write(ws, "m.yaml", MESSY)
    victim = ws.root / "victim.txt"
    victim.write_text("mine\n")
    (ws.manifests / "m.yaml.dfr-fmt.tmp").symlink_to(victim)
    code, _, err = dfr("fmt", "manifests")
    assert code == 1 and "m.yaml.dfr-fmt.tmp is in the way" in err, err
    assert victim.read_text() == "mine\n" and path.read_text() == MESSY
    assert (ws.manifests / "m.yaml.dfr-fmt.tmp").is_symlink()


def test_fmt_keeps_an_edit_made_while_it_ran(
    ws: Workspace, dfr: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file was read, formatted, then replaced: an edit saved meanwhile was lost."""
    path = _write(ws, "m.yaml", MESSY)
    edited = MESSY.replace("number_of_samples: 10", "number_of_samples: 20")
    real = format_text

    def format_while_the_user_saves(text: str) -> str | None:
        path.write_text(edited)
        return real(text)

    monkeypatch.setattr(fmt_module, "format_text", format_while_the_user_saves)
    code, _, err = dfr("fmt", "manifests")
    assert code == 1 and "the file changed while dfr fmt ran; run dfr fmt again" in err
    assert path.read_text() == edited
    assert not list(ws.manifests.glob("*.tmp"))


def _limited(limit: int) -> None:
    """In the child: writing past `limit` bytes fails with EFBIG, as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def _dfr_with_a_full_disk(ws: Workspace, limit: int, *args: str) -> tuple[int, str]:
    env = ws.env({"DFR_NO_CACHE": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    done = run_text(
        [sys.executable, "-m", "reconciler", *args],
        cwd=ws.root,
        env=env,
        timeout=60,
        preexec_fn=lambda: _limited(limit),
    )
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    return done.returncode, done.stdout + done.stderr


def test_fmt_on_a_full_disk_leaves_the_file_whole(ws: Workspace) -> None:
    path = _write(ws, "m.yaml", MESSY + "# " + "x" * 400 + "\n")
    code, text = _dfr_with_a_full_disk(ws, 200, "fmt", "manifests")
    assert code == 1 and "manifests/m.yaml: not formatted: cannot write (File too large" in text
    assert path.read_text() == MESSY + "# " + "x" * 400 + "\n"
    assert sorted(p.name for p in ws.manifests.iterdir()) == ["m.yaml"]


def test_fmt_of_a_pipe_is_refused_without_waiting(ws: Workspace) -> None:
    """`dfr fmt ff.yaml` of a FIFO read it, then waited forever reading it again to check
    that it had not changed, leaving `ff.yaml.dfr-fmt.tmp` behind when killed."""
    done = run_text(
        [sys.executable, "-m", "reconciler", "fmt", "/dev/stdin"],
        cwd=ws.root,
        env=ws.env(),
        timeout=60,
        input=MESSY,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        "/dev/stdin: not formatted: not a regular file; nothing to write the formatted text to\n"
    )
    assert sorted(p.name for p in ws.root.iterdir()) == ["manifests"]


def test_fmt_formats_a_file_named_twice_once(ws: Workspace, dfr: Runner) -> None:
    path = _write(ws, "m.yaml", MESSY)
    code, out, _ = dfr("fmt", "manifests/m.yaml", "./manifests/m.yaml", "manifests")
    assert code == 0 and out == "reformatted manifests/m.yaml\n"
    assert path.read_text() == TIDY


def test_fmt_check_exit_codes_and_diff(ws: Workspace, dfr: Runner) -> None:
    _write(ws, "tidy.yaml", TIDY.replace("messy", "tidy"))
    assert tuple(dfr("fmt", "--check", "manifests")) == (0, "", "")
    messy = _write(ws, "m.yaml", MESSY.replace("name: messy", "name: messy  # \u202e reversed"))
    code, out, err = dfr("fmt", "--check", "--diff", "manifests")
    assert code == 1 and messy.read_text().startswith("kind:")
    assert out.splitlines()[:3] == [
        "--- manifests/m.yaml (now)",
        "+++ manifests/m.yaml (formatted)",
        "@@ -1,7 +1,7 @@",
    ]
    assert "+apiVersion: dataframer.ai/v1\n kind: GenerationRun\n-apiVersion:" in out
    assert out.endswith("would reformat manifests/m.yaml\n") and "1 file not in" in err
    assert "\u202e" not in out and "# \\u202e reversed" in out  # made printable
    code, out, _ = dfr("fmt", "--diff", "manifests")  # --diff alone also writes
    assert code == 0 and out.endswith("reformatted manifests/m.yaml\n")
    assert dfr("fmt", "--check", "manifests").code == 0
    _write(ws, "bad.yaml", "kind: [\n")
    assert dfr("fmt", "--check", "manifests").code == 1  # a file it cannot read


# -- fmt: properties over generated manifests ------------------------------------------

TOP_VALUES: dict[str, Sequence[str] | None] = {
    "apiVersion": ["dataframer.ai/v1"],
    "kind": ["GenerationRun"],
    "metadata": None,
    "spec": None,
    "evaluate": ["{}"],
}
SPEC_VALUES = {
    "spec_id": [SPEC],
    "spec_version": ["1", "2"],
    "number_of_samples": ["10", "0", "20000"],
    "generation_model": ["anthropic/claude-sonnet-4-5", "'quoted/model'"],
}


@st.composite
def manifests(draw: st.DrawFn) -> str:
    """A manifest in any key order, with comments above keys, blank lines, end-of-line
    comments, CRLF or LF, with or without a final newline, and sometimes a second document."""
    newline = draw(st.sampled_from(["\n", "\r\n"]))

    def block(
        keys: list[str], indent: str, value_of: Mapping[str, Sequence[str] | None]
    ) -> list[str]:
        lines: list[str] = []
        for key in keys:
            lines += [""] * draw(st.integers(0, 1))
            if draw(st.booleans()) and (indent or key != keys[0]):  # not the file's header
                lines.append(f"{indent}# about {key}")
            values = value_of[key]
            eol = draw(st.sampled_from(["", "  # eol"]))
            if values is None:
                lines.append(f"{indent}{key}:{eol}")
                lines += nested[key]
            else:
                lines.append(f"{indent}{key}: {draw(st.sampled_from(values))}{eol}")
        return lines

    meta = draw(st.permutations(["name", "labels"]))
    meta_values = {"name": ["gen-a"], "labels": ["{team: x}"]}
    spec_keys = draw(st.permutations(list(SPEC_VALUES)))
    nested: dict[str, list[str]] = {}
    nested["metadata"] = block(meta, "  ", meta_values)
    nested["spec"] = block(spec_keys, "  ", SPEC_VALUES)
    top = draw(st.permutations(list(TOP_VALUES)))
    lines = ["# header"] if draw(st.booleans()) else []
    lines += block(top, "", TOP_VALUES)
    if draw(st.booleans()):
        lines += ["---", "z: 1", "a:", "- b  # list"]
    text = newline.join(lines)
    return text if draw(st.booleans()) else text + newline


def _bare_lines(text: str) -> list[str]:
    return [line.rstrip("\r\n") for line in split_lines(text)]


def _findings(text: str) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "m.yaml")
        path.write_bytes(text.encode())
        result = validate_paths([str(path)])
    return sorted((d.severity, d.message) for d in result.diagnostics)


@given(manifests())
def test_fmt_is_idempotent_moves_lines_only_and_keeps_validity(text: str) -> None:
    new = format_text(text)
    if new is None:
        return
    assert format_text(new) is None  # fmt twice = fmt once
    assert sorted(_bare_lines(new)) == sorted(_bare_lines(text))
    assert new.endswith(("\n", "\r\n")) == text.endswith(("\n", "\r\n"))
    assert _findings(new) == _findings(text)  # validates iff the input did, same findings
    lines = split_lines(new)
    for at, line in enumerate(lines):
        if line.strip().startswith("# about "):  # still above the key it describes
            key = line.strip()[len("# about ") :]
            assert lines[at + 1].strip().startswith(f"{key}:"), new


# -- init ------------------------------------------------------------------------------


def test_init_where_dataframer_is_a_file(ws: Workspace, dfr: Runner) -> None:
    """os.makedirs raised FileExistsError: "internal error ... This is a bug in dfr"."""
    (ws.root / "proj").mkdir()
    (ws.root / "proj" / "dataframer").write_text("mine\n")
    code, out, err = dfr("init", "proj")
    assert (code, out) == (1, "")
    assert err == "error: proj/dataframer exists and is not a folder (nothing was written)\n"
    assert (ws.root / "proj" / "dataframer").read_text() == "mine\n"


def test_init_on_a_full_disk_writes_nothing(ws: Workspace) -> None:
    """The manifest was written, then the schema failed half-way: init said nothing was
    written and left a starter and a cut schema behind."""
    code, text = _dfr_with_a_full_disk(ws, 4000, "init", "new/proj")
    assert code == 1 and text.startswith(
        "error: cannot write new/proj/dataframer/generation-run.schema.json: File too large"
    )
    assert "(nothing was written)" in text and not (ws.root / "new").exists()


def test_init_through_links_and_into_existing_files(ws: Workspace, dfr: Runner) -> None:
    (ws.root / "real").mkdir()
    (ws.root / "linked").symlink_to("real")
    assert dfr("init", "linked").code == 0  # a linked folder is a folder
    assert (ws.root / "real/dataframer/example-run.yaml").is_file()
    theirs = ws.root / "p/dataframer"
    theirs.mkdir(parents=True)
    (theirs / "example-run.yaml").symlink_to(ws.root / "elsewhere.yaml")  # dangling
    code, _, err = dfr("init", "p")
    assert code == 1 and "already exists" in err and not (ws.root / "elsewhere.yaml").exists()
    assert not (theirs / "generation-run.schema.json").exists()
    code, _, err = dfr("init", "manifests/../p")
    assert code == 1 and "never overwrites" in err


# -- state migrate --to FILE -----------------------------------------------------------


@pytest.mark.parametrize(
    ("destination", "says"),
    [
        ("manifests/alpha.yaml", "is a manifest's name (*.yaml)"),
        ("new.yml", "is a manifest's name (*.yaml)"),
        ("manifests", "is a folder"),
        ("/dev/null", "is not a regular file"),
        ("", "names no file"),
        ("file://", "names no file"),
        ("package.json", "is a file that is not a dfr state"),
    ],
)
def test_state_migrate_refuses_a_destination_that_cannot_be_a_state(
    ws: Workspace, dfr: Runner, destination: str, says: str
) -> None:
    """Each reached the backend, which left NAME.lock beside it (`manifests/alpha.yaml.lock`,
    `manifests.lock`, `/dev/null.lock` as root) before finding it could not be a state."""
    ws.write("alpha")
    assert dfr(*apply_args("manifests")).code == 0
    (ws.root / "package.json").write_text('{"name": "not-a-state", "version": "1.0.0"}\n')
    before = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    code, out, err = dfr("state", "migrate", "--state", str(ws.state), "--to", destination)
    assert code == 1 and out == "" and says in err and len(err.splitlines()) == 1, err
    assert {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()} == before
    assert not os.path.lexists("/dev/null.lock") or destination != "/dev/null"


# -- pre-commit, as pre-commit runs it -------------------------------------------------


def _hook(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    from reconciler.cli.precommit import run

    capsys.readouterr()
    code = run(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in out + err
    return code, out + err


def test_precommit_odd_file_names_none_and_a_thousand(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["with space.yaml", "ünï ✓.yaml", "-leading.yaml", "--config=x.yaml"]
    for i, name in enumerate(names):
        (ws.manifests / name).write_text(manifest_text(f"odd-{i}"))
    assert _hook(capsys, *(f"manifests/{n}" for n in names)) == (0, "")
    assert _hook(capsys) == (0, "")  # no files: nothing to say
    for i in range(1000):
        (ws.manifests / f"m{i:04}.yaml").write_text(manifest_text(f"gen-{i}"))
    (ws.manifests / "m0999.yaml").write_text(manifest_text("odd-2"))  # a name taken
    files = sorted(f"manifests/{p.name}" for p in ws.manifests.glob("m*.yaml"))
    code, text = _hook(capsys, *files)
    assert code == 1 and "manifests/m0999.yaml:4:9: error: metadata.name 'odd-2'" in text
    assert text.endswith("1 error in 1000 files checked (names compared across all manifests).\n")


def test_precommit_deleted_renamed_outside_and_broken_config(
    ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    (ws.manifests / "a.yaml").write_text(manifest_text("alpha"))
    code, text = _hook(capsys, "manifests/gone.yaml")  # `pre-commit run --files` of a deleted one
    assert code == 1 and "manifests/gone.yaml:1:1: error: no such file or directory" in text
    (ws.manifests / "a.yaml").rename(ws.manifests / "renamed.yaml")
    assert _hook(capsys, "manifests/renamed.yaml") == (0, "")
    (ws.root / "notes.yaml").write_text("a: 1\n")
    assert _hook(capsys, "--skip-non-manifests", "notes.yaml") == (0, "")
    ws.config("manifests: [\n")
    code, text = _hook(capsys, "manifests/renamed.yaml")
    assert code == 1 and text.startswith("dfr.yaml:2:1: error: invalid YAML")


def test_precommit_snippet_passes_paths_that_start_with_a_dash(tmp_path: Path) -> None:
    """The snippet `dfr init` prints ran `dfr pre-commit FILES` and `dfr fmt --check FILES`:
    a manifest under a folder named `-x` was read by click as the option -x and both hooks
    failed with a usage error instead of checking it."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "project"
    bad = repo / "-x" / "dataframer" / "a.yaml"
    bad.parent.mkdir(parents=True)
    bad.write_text(MESSY.replace("number_of_samples: 10", "number_of_samples: 0"))
    (repo / ".pre-commit-config.yaml").write_text(PRE_COMMIT)
    bin_dir = str(Path(sys.executable).parent)  # where this dfr is installed
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.update(PRE_COMMIT_HOME=str(tmp_path / "home"), PRE_COMMIT_COLOR="never")
    for argv in (["git", "init", "-q"], ["git", "add", "-A"]):
        assert run_text(argv, cwd=repo, env=env, timeout=60).returncode == 0
    done = run_text(
        [sys.executable, "-m", "pre_commit", "run", "--color", "never"],
        cwd=repo,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1 and "No such option" not in done.stdout, done.stdout
    assert "-x/dataframer/a.yaml:6:22: error: spec.number_of_samples" in done.stdout
    assert "would reformat -x/dataframer/a.yaml" in done.stdout


# -- diff ------------------------------------------------------------------------------


def test_diff_odd_names_a_name_twice_and_a_run_without_its_manifest(
    ws: Workspace, dfr: Runner
) -> None:
    ws.write("alpha")
    assert dfr(*apply_args("manifests")).code == 0
    for name in ("al\x1b[31mpha\nx", "", "-x", "../alpha", "ALPHA"):
        code, out, err = dfr("diff", "--", name, "manifests")
        assert code == 1 and out == "" and len(err.splitlines()) == 1, err
        assert "\x1b" not in err
    odd = ws.root / "d\nx\x1b[2J"  # a folder without manifests: the warning names it
    odd.mkdir()
    code, out, err = dfr("diff", "nobody", str(odd.name))
    assert code == 1 and "\x1b" not in err and len(err.splitlines()) == 2, err
    assert err.startswith("warning: no manifests found under d\\nx\\x1b[2J\n")
    (ws.manifests / "copy.yaml").write_text(manifest_text("alpha"))
    code, out, err = dfr("diff", "alpha", "manifests")
    assert code == 1 and "'alpha' is already used by the manifest at" in err and out == ""
    (ws.manifests / "copy.yaml").unlink()
    (ws.manifests / "alpha.yaml").unlink()
    ws.write("beta")
    code, out, _ = dfr("diff", "--detailed-exitcode", "alpha", "manifests")
    assert code == 2 and "but no manifest names it: `dfr plan` shows it as orphaned" in out


def test_diff_writes_a_hand_edited_run_id_and_status_on_one_line(
    ws: Workspace, dfr: Runner
) -> None:
    """diff wrote the recorded run id and status raw: a newline split its first line and an
    escape sequence reached the terminal (with and without the manifest)."""
    from reconciler.state.local import LocalBackend

    ws.write("alpha")
    ws.write("beta")
    assert dfr(*apply_args("manifests")).code == 0
    with LocalBackend(ws.state).lock("test") as store:
        for name in ("alpha", "beta"):
            odd = f"{name}\n::error::x\x1b[2J"
            store.put(store.state.runs[name].evolve(run_id=odd, status=odd))
    (ws.manifests / "beta.yaml").unlink()
    for name in ("alpha", "beta"):
        code, out, _ = dfr("diff", name, "manifests")
        assert code == 0 and "\x1b" not in out and "\n::" not in out, out
        assert out.splitlines()[0].startswith(name) and "\\n::error::x\\x1b[2J" in out
