"""QuAC and NewsQA by the paper's converter rules (checked against tests/converter_oracle.py), their named
alternatives (newsqa_combined_json, newsqa_mrqa), MRQA files without a header, the conversion names, and the
download routes against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import shutil
import threading
from pathlib import Path

import datasets
import pytest
from converter_oracle import mrqa_records, newsqa_records, quac_records
from harness import run_script_main
from shared import ADAPTER_FIXTURES as FIXTURES
from shared import REPO, SMALL_WINDOWS, assert_aligned

from qa_transfer.core.errors import QADataError
from qa_transfer.sources.adapters import (
    SQUAD_FORMAT_FILE,
    conversion_name,
    convert_named_file,
    convert_named_split,
    load_named_file,
    load_named_split,
    load_qa_split,
)
from qa_transfer.sources.common import PAPER_CONVERSION

datasets.disable_progress_bars()

QUAC = FIXTURES / "quac"
NEWSQA = FIXTURES / "newsqa"
HEADERLESS_MRQA = FIXTURES / "mrqa" / "NewsQA_sample.jsonl"


# --- QuAC -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split, file", [("validation", "val_v0.2.json"), ("train", "train_v0.2.json")])
def test_quac_is_converted_by_the_papers_rules(split, file, cache_dir):
    dataset, stats = convert_named_split("quac", split, str(QUAC), cache_dir)
    expected = quac_records(str(QUAC / file))
    assert list(dataset) == expected
    assert_aligned(expected)
    # the section text is kept whole, the CANNOTANSWER sentinel included; nothing repaired or dropped
    assert all(r["context"].endswith("CANNOTANSWER") for r in expected)
    assert (stats.questions, stats.repaired_offsets, stats.dropped) == (len(expected), 0, 0)
    assert stats.unanswerable == sum(1 for r in expected if not r["answers"]["text"]) > 0


def test_quac_keeps_the_turns_own_answer_and_offset(cache_dir):
    records = {r["id"]: r for r in load_named_file("quac", str(QUAC / "val_v0.2.json"), cache_dir)}
    # orig_answer, not the other annotators' shorter span
    assert records["C_ada1_1_q#1"]["answers"]["text"] == ["She added notes that were longer than the article itself."]
    # "article" occurs twice: the turn's own offset (the second) is kept
    context = records["C_ada1_1_q#3"]["context"]
    assert records["C_ada1_1_q#3"]["answers"] == {"text": ["article"], "answer_start": [context.rindex("article")]}
    assert records["C_hop1_0_q#1"]["answers"] == {"text": [], "answer_start": []}


def test_quac_orig_answer_off_its_offset_is_kept_verbatim_and_then_named_by_the_check(tmp_path, cache_dir):
    quac = json.loads((QUAC / "val_v0.2.json").read_text(encoding="utf-8"))
    quac["data"][1]["paragraphs"][0]["qas"][0]["orig_answer"]["answer_start"] += 2
    path = tmp_path / "val_v0.2.json"
    path.write_text(json.dumps(quac), encoding="utf-8")
    dataset, stats = convert_named_file("quac", str(path), cache_dir)
    assert list(dataset) == quac_records(str(path))
    assert "1 orig_answer not at its answer_start (kept verbatim" in stats.summary()
    with pytest.raises(QADataError, match=r"C_hop1_0_q#0.*'New York City' is not at answer_start 21"):
        load_qa_split("validation", dataset_name="quac", data_file=str(path), cache_dir=cache_dir)


# --- NewsQA ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split, file", [("validation", "dev.csv"), ("train", "train.csv")])
def test_newsqa_split_csvs_are_converted_by_the_papers_rules(split, file, cache_dir):
    dataset, stats = convert_named_split("newsqa", split, str(NEWSQA), cache_dir)
    expected = newsqa_records(str(NEWSQA / "split_data" / file))
    assert list(dataset) == expected
    assert_aligned(expected)
    assert (stats.questions, stats.answerable, stats.dropped) == \
        (len(expected), sum(bool(r["answers"]["text"]) for r in expected), 0)


def test_newsqa_answer_rules_on_the_edge_cases(cache_dir):
    records = {r["id"]: r for r in load_named_split("newsqa", "validation", str(NEWSQA), cache_dir)}
    no_answer = {"text": [], "answer_start": []}
    assert records["aaa111_q0"]["answers"]["text"] == ["Tuesday"]  # the first of two ranges
    for unanswerable in ("aaa111_q2", "aaa111_q3", "bbb222_q1", "ccc333_q2"):  # none, -1:-1, 5:5, across a blank line
        assert records[unanswerable]["answers"] == no_answer, unanswerable
    assert records["aaa111_q4"]["answers"] == no_answer  # "weeks of debate": the story has two spaces there
    assert records["bbb222_q2"]["answers"]["text"] == ["Sunday ."]  # 6:9 cut at the story's end, like a slice
    # the second "on Sunday" in the story, placed at the first (str.find)
    story = records["ccc333_q0"]["context"]
    assert records["ccc333_q0"]["answers"] == {"text": ["on Sunday"], "answer_start": [story.index("on Sunday")]}
    assert records["ccc333_q4"]["answers"]["text"] == ['"worst" damage']


def test_newsqa_without_files_gives_maluubas_steps_and_the_mrqa_alternative():
    with pytest.raises(QADataError) as error:
        load_named_split("newsqa", "validation")
    message = str(error.value)
    for step in ("git clone https://github.com/Maluuba/newsqa", "newsqa-data-v1.tar.gz", "cnn_stories.tgz",
                 "data_generator.py", "split_data/train.csv", "--data_dir", "--dataset newsqa_mrqa"):
        assert step in message, step


def test_combined_json_only_under_its_own_name(cache_dir):
    path = str(NEWSQA / "combined-newsqa-data-v1.json")
    with pytest.raises(QADataError, match=r"combined-newsqa-data-v1\.json: this is Maluuba's combined JSON"
                                          r".*--dataset newsqa_combined_json"):
        load_named_file("newsqa", path, cache_dir)
    # --data_dir with only the combined JSON for a split: no silent fallback
    with pytest.raises(QADataError, match=r"no newsqa test file found"):
        load_named_split("newsqa", "test", str(NEWSQA), cache_dir)
    dev = list(load_named_split("newsqa_combined_json", "validation", str(NEWSQA), cache_dir))
    lobster = dev[0]["context"]
    assert [r["id"] for r in dev] == ["ccc333_q0", "ccc333_q1", "ccc333_q3"]  # q2, a badQuestion, dropped
    assert dev[0]["answers"] == {"text": ["A rare blue lobster"], "answer_start": [lobster.index("A rare")]}
    assert conversion_name("newsqa_combined_json") == "maluuba_combined_json_consensus"


# --- MRQA files without a header -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mrqa", "newsqa", "newsqa_mrqa"])
def test_mrqa_files_without_a_header_are_recognised(name, cache_dir):
    dataset = load_qa_split("validation", dataset_name=name, data_file=str(HEADERLESS_MRQA), cache_dir=cache_dir)
    assert list(dataset) == mrqa_records(str(HEADERLESS_MRQA), title="NewsQA_sample")
    assert conversion_name(name, str(HEADERLESS_MRQA)) == "mrqa_2019"


# --- Conversion names ------------------------------------------------------------------------------------------


def test_every_dataset_names_its_conversion_and_the_papers_is_the_default():
    assert PAPER_CONVERSION == "sen_saffari_2020"
    assert conversion_name("quac") == conversion_name("newsqa") == PAPER_CONVERSION
    assert conversion_name("quac", str(QUAC / "val_v0.2.json")) == PAPER_CONVERSION
    assert conversion_name("newsqa", str(NEWSQA / "split_data" / "dev.csv")) == PAPER_CONVERSION
    assert conversion_name("newsqa_mrqa") == conversion_name("mrqa") == "mrqa_2019"
    assert conversion_name("squad_v2") == "as_published"
    sample = REPO / "examples" / "news_sample" / "dev.jsonl"
    assert conversion_name("newsqa", str(sample)) == conversion_name(None, str(sample)) == SQUAD_FORMAT_FILE


# --- Downloads, from a local server ----------------------------------------------------------------------------


class FixtureServer:
    """http.server on 127.0.0.1 serving a folder; logs each request, and can cut the first GET of a path short
    (the full Content-Length announced, half the body sent, the connection closed)."""

    def __init__(self, root: Path, cut_first: tuple[str, ...] = ()):
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut_pending = set(cut_first)
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                server.requests.append(("HEAD", self.path, self.headers.get("Range")))
                super().do_HEAD()

            def do_GET(self):
                server.requests.append(("GET", self.path, self.headers.get("Range")))
                if self.path in server.cut_pending:
                    server.cut_pending.discard(self.path)
                    body = (root / self.path.lstrip("/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def gets(self, path: str) -> int:
        return sum(1 for method, requested, _ in self.requests if method == "GET" and requested == path)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def online(monkeypatch):
    """The tests run with HF_HUB_OFFLINE=1; the download tests lift it for datasets (their server is local, and
    reached directly even where a proxy is configured)."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1")


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(root: Path, cut_first: tuple[str, ...] = ()) -> FixtureServer:
        servers.append(FixtureServer(root, cut_first))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_quac_is_downloaded_converted_and_reused_offline(online, serve, monkeypatch, cache_dir):
    server = serve(QUAC)
    monkeypatch.setenv("QUAC_BASE_URL", server.url)
    dataset, _ = convert_named_split("quac", "validation", None, cache_dir)
    assert list(dataset) == quac_records(str(QUAC / "val_v0.2.json"))
    assert server.gets("/val_v0.2.json") == 1 and server.gets("/train_v0.2.json") == 0
    # a second run, offline and with the server gone, reuses the download and the conversion
    server.stop()
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    again = load_qa_split("validation", dataset_name="quac", cache_dir=cache_dir)
    assert list(again) == list(dataset)


def test_an_interrupted_download_is_tried_again_and_completes(online, serve, monkeypatch, cache_dir):
    monkeypatch.setattr("qa_transfer.sources.downloads.time.sleep", lambda seconds: None)
    server = serve(QUAC, cut_first=("/train_v0.2.json",))
    monkeypatch.setenv("QUAC_BASE_URL", server.url + "/")
    dataset, _ = convert_named_split("quac", "train", None, cache_dir)
    assert list(dataset) == quac_records(str(QUAC / "train_v0.2.json"))
    assert server.gets("/train_v0.2.json") == 2  # the cut transfer, then a whole one
    downloads = [p for p in Path(cache_dir, "downloads").iterdir() if p.is_file()]
    cached = [p for p in downloads if not p.name.endswith((".json", ".lock", ".incomplete"))]
    assert len(cached) == 1 and cached[0].read_bytes() == (QUAC / "train_v0.2.json").read_bytes()


def test_a_download_that_keeps_failing_is_one_error_and_caches_nothing(online, serve, monkeypatch, tmp_path, cache_dir):
    monkeypatch.setattr("qa_transfer.sources.downloads.time.sleep", lambda seconds: None)
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(QUAC / "val_v0.2.json", root / "val_v0.2.json")
    server = serve(root, cut_first=("/val_v0.2.json",))
    monkeypatch.setattr("qa_transfer.sources.downloads.DOWNLOAD_ATTEMPTS", 1)
    monkeypatch.setenv("QUAC_BASE_URL", server.url)
    with pytest.raises(QADataError, match=r"val_v0\.2\.json: download failed 1 times .*--data_dir"):
        convert_named_split("quac", "validation", None, cache_dir)
    with pytest.raises(QADataError, match=r"train_v0\.2\.json: not found"):
        convert_named_split("quac", "train", None, cache_dir)
    assert list(Path(cache_dir).rglob("*.arrow")) == []


def test_a_host_that_cannot_be_reached_is_said_so(online, monkeypatch, cache_dir):
    monkeypatch.setenv("QUAC_BASE_URL", "http://no-such-host.invalid/quac")  # .invalid never resolves
    with pytest.raises(QADataError) as error:
        convert_named_split("quac", "validation", None, cache_dir)
    message = str(error.value)
    assert "val_v0.2.json: the network is unreachable (" in message and ": not found" not in message
    assert "--data_dir" in message and "HF_HUB_OFFLINE=1" in message


def test_offline_the_error_says_which_files_to_fetch(cache_dir):
    with pytest.raises(QADataError) as error:
        load_named_split("quac", "validation", None, cache_dir)
    message = str(error.value)
    assert "offline" in message and "--data_dir" in message
    assert "https://s3.amazonaws.com/my89public/quac/val_v0.2.json" in message and "train_v0.2.json" in message


def _mrqa_newsqa_release(root: Path) -> Path:
    """train/ and dev/ NewsQA.jsonl.gz in MRQA's layout (a header line, then the headerless sample's lines)."""
    lines = HEADERLESS_MRQA.read_text(encoding="utf-8")
    for folder, split in (("train", "train"), ("dev", "dev")):
        (root / folder).mkdir(parents=True)
        header = json.dumps({"header": {"dataset": "NewsQA", "split": split}}) + "\n"
        (root / folder / "NewsQA.jsonl.gz").write_bytes(gzip.compress((header + lines).encode("utf-8")))
    return root


def test_newsqa_mrqa_is_downloaded_by_name(online, serve, monkeypatch, tmp_path, cache_dir):
    server = serve(_mrqa_newsqa_release(tmp_path / "mrqa"))
    monkeypatch.setenv("MRQA_BASE_URL", server.url)
    dataset, stats = convert_named_split("newsqa_mrqa", "validation", None, cache_dir)
    assert list(dataset) == mrqa_records(str(HEADERLESS_MRQA), title="NewsQA")
    assert stats.unanswerable == 0 and server.gets("/dev/NewsQA.jsonl.gz") == 1


# --- The conversion in the results -----------------------------------------------------------------------------


@pytest.mark.slow
def test_run_qa_records_the_conversion_of_its_data(online, serve, monkeypatch, tmp_path, tiny_qa_model):
    import run_qa

    server = serve(_mrqa_newsqa_release(tmp_path / "mrqa"))
    monkeypatch.setenv("MRQA_BASE_URL", server.url)
    out = tmp_path / "model"
    run_script_main(run_qa, [
        "--dataset", "newsqa_mrqa", "--model_name_or_path", tiny_qa_model, "--output_dir", out,
        "--cache_dir", tmp_path / "cache", "--do_train", "--do_eval", "--max_steps", "1", *SMALL_WINDOWS,
        "--save_strategy", "no",
    ])
    info = json.loads((out / run_qa.RUN_INFO_FILE).read_text())
    assert info["dataset"] == "newsqa_mrqa"
    assert info["train_conversion"] == info["validation_conversion"] == "mrqa_2019"


def test_cross_eval_columns_carry_their_conversion(cache_dir):
    import cross_eval
    from qa_transfer.qa.arguments import QAEvalArguments

    args = cross_eval.CrossEvalArguments(models="unused", data_dir=[f"quac={QUAC}"], cache_dir=cache_dir)
    specs = cross_eval.dataset_specs(["quac", f"newsqa={HEADERLESS_MRQA}", "newsqa_combined_json"])
    quac, newsqa, combined = cross_eval.load_columns(specs, args, QAEvalArguments(), seed=0)
    assert (quac.conversion, quac.error) == (PAPER_CONVERSION, None)
    assert (newsqa.conversion, newsqa.error) == ("mrqa_2019", None)
    assert combined.error is not None  # no --data_dir for it: Maluuba's steps, not a silent stand-in
