"""The shape of the code base: no import circle among the project's modules, no script importing another script,
fine_tune_all.py --dry_run without the heavy libraries, and no overlong function in the plumbing."""

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from shared import REPO

# Scripts: what users run. packaged_models.py also has a command line (a one-off extraction), but it is a helper
# that the training scripts import, so it is not counted as one.
SCRIPTS = {"run_qa", "run_classification", "cross_eval", "fine_tune_all", "convert_qa", "score_predictions",
           "predict"}
# Every function stays readable in one screen or two, every module in one sitting.
MAX_FUNCTION_LINES = 100
MAX_MODULE_LINES = {"cross_eval.py": 500}  # the default below; cross_eval.py keeps discovery, columns and cells
DEFAULT_MAX_MODULE_LINES = 450
# Every module of the project (the scripts, their helpers, the dataset sources).
PACKAGE = REPO / "qa_transfer"
PROJECT_FILES = sorted(str(path.relative_to(REPO)) for path in [*REPO.glob("*.py"), *PACKAGE.rglob("*.py")])


def project_modules() -> dict[str, Path]:
    """Module name -> file, for the top-level scripts (and utils_qa) and every module of the qa_transfer package."""
    modules = {path.stem: path for path in REPO.glob("*.py")}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that `name` imports anywhere in its file (inside functions too: a deferred import
    still ties the two modules together)."""
    package = name.rpartition(".")[0] if path.stem != "__init__" else name
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x, from .common import y
                base = ".".join(filter(None, [package, base]))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known and target != name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_check_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_our_modules():
    graph = import_graph()
    assert {"qa_transfer.qa.data", "qa_transfer.sources.adapters", "qa_transfer.sources.common", "run_qa",
            "qa_transfer.core.scripts"} <= set(graph)
    assert "qa_transfer.qa.data" in graph["qa_transfer.sources.adapters"]  # the parser sees imports at all
    assert find_cycle(graph) is None


def test_no_script_imports_another_script():
    graph = import_graph()
    assert set(graph) >= SCRIPTS
    crossings = {script: sorted(graph[script] & SCRIPTS) for script in SCRIPTS if graph[script] & SCRIPTS}
    assert crossings == {}


def test_fine_tune_all_dry_run_loads_no_heavy_library(tmp_path):
    # A fresh interpreter: this test process has loaded torch long ago.
    code = (
        "import sys\n"
        "import fine_tune_all\n"
        f"assert fine_tune_all.main(['--output_root', {str(tmp_path)!r}, '--dry_run']) == 0\n"
        "print(sorted(m for m in ('torch', 'transformers', 'matplotlib', 'sklearn') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=REPO)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("[squad_v2] ") for line in lines)  # it did print the commands
    assert lines[-1] == "[]"


@pytest.mark.parametrize("file_name", PROJECT_FILES)
def test_no_function_over_100_lines(file_name):
    tree = ast.parse((REPO / file_name).read_text(encoding="utf-8"))
    long = [f"{node.name}: {node.end_lineno - node.lineno + 1} lines" for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_script_enters_through_run_script(script):
    """`def main(argv: list[str] | None = None)` and `run_script(main)` under `__main__`, no sys.exit in main."""
    tree = ast.parse((REPO / f"{script}.py").read_text(encoding="utf-8"))
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert [arg.arg for arg in main.args.args] == ["argv"]
    assert ast.unparse(main.args.args[0].annotation) == "list[str] | None"
    assert [ast.unparse(default) for default in main.args.defaults] == ["None"]
    guard = tree.body[-1]
    assert isinstance(guard, ast.If) and ast.unparse(guard.test) == "__name__ == '__main__'"
    assert [ast.unparse(statement) for statement in guard.body] == ["run_script(main)"]
    assert "sys.exit" not in ast.unparse(tree)


# argparse's and HfArgumentParser's private names: the help page's shaping stays behind core/arguments.py's surface.
PRIVATE_PARSER_NAMES = ("_add_dataclass_arguments", "_parse_dataclass_field", "_actions", "_action_groups",
                        "_group_actions", "_get_help_string", "_format_action_invocation", "_option_string_actions")


def test_parser_private_names_live_in_one_module():
    pattern = re.compile(r"\b(" + "|".join(PRIVATE_PARSER_NAMES) + r")\b")
    assert pattern.search("group._group_actions.remove(action)")  # the check sees such a use
    users = [name for name in PROJECT_FILES if pattern.search((REPO / name).read_text(encoding="utf-8"))]
    assert users == ["qa_transfer/core/arguments.py", GUARDS]  # the guards name the transformers ones, to check them


# The transformers modules whose classes the project subclasses, configures or reads: a private name that they
# define or look up and that the project uses must be listed in core/upgrade_guards.py, which checks it at start-up.
TRANSFORMERS_MODULES = ("trainer.py", "trainer_callback.py", "training_args.py", "hf_argparser.py",
                        "modeling_utils.py", "configuration_utils.py", "tokenization_utils_base.py",
                        "data/data_collator.py")
GUARDS = "qa_transfer/core/upgrade_guards.py"


def private_names_in(source: str) -> set[str]:
    """The private names (one leading underscore) that a file uses: attributes read or written, methods defined,
    and strings spelled like one (getattr's argument, a class dictionary's key)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    return {name for name in names if re.fullmatch(r"_[a-z]\w*", name)}


def transformers_private_names() -> set[str]:
    """The private names that the transformers modules above define (`def _x`, `self._x`) or look up (`"_x"`)."""
    root = Path(importlib.util.find_spec("transformers").origin).parent
    pattern = re.compile(r"(?:def |self\.|cls\.|[\"'])(_[a-z]\w*)")
    return {name for module in TRANSFORMERS_MODULES for name in pattern.findall((root / module).read_text("utf-8"))}


def test_every_transformers_internal_the_code_uses_is_guarded():
    from qa_transfer.core.upgrade_guards import INTERNALS, PARSER_INTERNALS

    assert private_names_in("trainer._tr_loss; getattr(x, '_y'); type('T', (A,), {'_z': 1})") == {"_tr_loss", "_y",
                                                                                                 "_z"}
    known = transformers_private_names()
    assert {"_tr_loss", "_get_eval_sampler", "_argument_group_name"} <= known  # the scan sees transformers' names
    users: dict[str, list[str]] = {}
    for file_name in [*PROJECT_FILES, *(str(path.relative_to(REPO)) for path in (REPO / "bench").glob("*.py"))]:
        if file_name != GUARDS:  # which names the checks' own strings
            for name in private_names_in((REPO / file_name).read_text(encoding="utf-8")):
                users.setdefault(name, []).append(file_name)
    parser_names = {internal.name for internal in PARSER_INTERNALS}  # they shape --help: core/arguments.py only
    assert {name: users[name] for name in parser_names} == {name: ["qa_transfer/core/arguments.py"]
                                                            for name in parser_names}
    listed = {internal.name for internal in INTERNALS} | parser_names
    assert {name: users[name] for name in sorted(users.keys() & known - listed)} == {}
    assert sorted(listed - users.keys() - {"loss_is_scaled_for_ga"}) == []  # no entry outlives its use
    assert "loss_is_scaled_for_ga" in (PACKAGE / "qa" / "training.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("file_name", PROJECT_FILES)
def test_no_module_over_450_lines(file_name):
    lines = len((REPO / file_name).read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES.get(file_name, DEFAULT_MAX_MODULE_LINES), f"{file_name}: {lines} lines"


def test_the_top_level_holds_the_scripts_and_utils_qa_the_helpers_live_in_the_package():
    assert {path.stem for path in REPO.glob("*.py")} == SCRIPTS | {"utils_qa"}
    assert (PACKAGE / "__init__.py").is_file()


def test_cross_eval_builds_no_evaluation_of_its_own():
    """Its cells run utils_qa.evaluate_qa, run_qa.py's evaluation: equal by sharing the code."""
    source = (REPO / "cross_eval.py").read_text(encoding="utf-8")
    assert [name for name in ("QAEvaluator(", "build_windows(", "qa_data_collator(") if name in source] == []
    assert "evaluate_qa(" in source and "evaluate_qa(" in (REPO / "run_qa.py").read_text(encoding="utf-8")


def test_tests_and_bench_import_without_touching_sys_path():
    users = [str(path.relative_to(REPO)) for folder in ("tests", "bench") for path in (REPO / folder).glob("*.py")
             if "sys.path.insert" in path.read_text(encoding="utf-8") and path.name != "test_structure.py"]
    assert users == []


def test_the_tree_passes_ruff():
    """The project's lint rules (pyproject.toml) hold everywhere; ruff is pinned in requirements.txt."""
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff) if ruff.exists() else "ruff", "check", "--no-cache", "."], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_transformers_release_without_the_parser_internals_stops_the_parser(monkeypatch):
    from transformers import HfArgumentParser

    from qa_transfer.core.arguments import ScriptArgumentParser

    monkeypatch.delattr(HfArgumentParser, "_add_dataclass_arguments")
    with pytest.raises(RuntimeError, match="HfArgumentParser has no method _add_dataclass_arguments any more"):
        ScriptArgumentParser([], description=None)


# The package's folders, each on the ones it may import (docs/design.md, "Code layout"); the package's top holds
# only its __init__ and the documented `python -m qa_transfer.packaged_models` command.
FOLDER_IMPORTS = {
    "core": {"core"},
    "qa": {"core", "qa"},
    "sources": {"core", "qa", "sources"},
    "matrix": {"core", "qa", "matrix"},
    "classification": {"core", "classification"},
    "inference": {"core", "qa", "classification", "inference"},
}
FORMER_MODULES = ("base_trainer", "compilation", "dataset_columns", "errors", "network", "plots", "precision",
                  "results_io", "script_args", "script_utils", "qa_data", "qa_windows", "qa_training", "qa_scores",
                  "qa_run_info", "squad_v2_metric", "matrix_report", "qa_probes", "qa_overlap", "classification_data",
                  "tweet_preprocessing", "utils_classification", "qa_adapters", "qa_downloads", "qa_sources",
                  "prediction_records")


def test_the_package_is_in_folders_by_job():
    top = sorted(path.name for path in PACKAGE.iterdir() if not path.name.startswith(("_", ".")) or
                 path.name == "__init__.py")
    assert top == sorted([*FOLDER_IMPORTS, "__init__.py", "packaged_models.py"])
    assert (PACKAGE / "packaged_models.py").read_text(encoding="utf-8").count("\ndef ") == 0  # a command, no code
    for folder in FOLDER_IMPORTS:
        assert (PACKAGE / folder / "__init__.py").is_file()


def test_each_folder_imports_only_the_folders_it_stands_on():
    graph = import_graph()
    assert "qa_transfer.core.errors" in graph["qa_transfer.qa.data"]  # the graph sees the folders
    crossings = {}
    for module, targets in graph.items():
        parts = module.split(".")
        if parts[0] != "qa_transfer" or len(parts) < 3:
            continue
        allowed = FOLDER_IMPORTS[parts[1]]
        wrong = sorted(target for target in targets if target.startswith("qa_transfer.")
                       and len(target.split(".")) > 2 and target.split(".")[1] not in allowed)
        scripts = sorted(target for target in targets if target in SCRIPTS)
        if wrong or scripts:
            crossings[module] = wrong + scripts
    assert crossings == {}


def test_no_file_names_a_module_by_its_former_path():
    pattern = re.compile(r"\bqa_transfer[./](" + "|".join(FORMER_MODULES) + r")\b")
    assert pattern.search("from qa_transfer.qa_data import x") and not pattern.search("qa_transfer.qa.data")
    files = subprocess.run(["git", "ls-files", "*.py", "*.md", "*.toml", "*.yaml", "*.txt"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    users = [name for name in files if not name.startswith("docs/results/") and name != "tests/test_structure.py"
             and (REPO / name).is_file() and pattern.search((REPO / name).read_text(encoding="utf-8"))]
    assert users == []


def test_the_tests_mirror_the_folders():
    """tests/<folder>/ for each package folder and for bench/; the tests of the whole project (structure, docs,
    help pages, usage contracts, faults, the transformers example's commands) stay at the top."""
    folders = sorted(path.name for path in (REPO / "tests").iterdir() if path.is_dir() and path.name != "fixtures"
                     and not path.name.startswith(("_", ".")))
    assert folders == sorted([*FOLDER_IMPORTS, "bench"])
    for folder in folders:
        assert list((REPO / "tests" / folder).glob("test_*.py")), folder
