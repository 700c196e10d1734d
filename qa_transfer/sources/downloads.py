"""The official files of the datasets without a loadable hub copy (QuAC, MRQA's NewsQA), downloaded once from
their public location with `datasets`' download manager (cached, reused offline; an interrupted transfer is tried
again), with one clear error when the network or the file cannot be reached."""

from __future__ import annotations

import logging
import os
import socket
import time

from datasets import DownloadConfig, DownloadManager
from huggingface_hub.errors import OfflineModeIsEnabled

from qa_transfer.core.errors import QADataError
from qa_transfer.sources.common import RemoteFiles

logger = logging.getLogger("qa_transfer.sources.downloads")

# Attempts per file before a download is given up; each failed one leaves nothing in the cache.
DOWNLOAD_ATTEMPTS = 3


def remote_urls(remote: RemoteFiles, split: str) -> list[str]:
    """The download URLs of one split: under `$<base_url_env>` when that is set, else under the public location."""
    base = (os.environ.get(remote.base_url_env) or remote.base_url).rstrip("/")
    return [f"{base}/{name}" for name in remote.split_files[split]]


def connection_failure(err: BaseException) -> BaseException | None:
    """The exception behind `err` that says the host could not be reached (a name that does not resolve, a
    refused connection, a timeout), or None: datasets reports those as a FileNotFoundError, like a missing file."""
    seen: BaseException | None = err
    for _ in range(32):  # a chain is short; this bounds a cyclic one
        if seen is None:
            break
        if isinstance(seen, (socket.gaierror, ConnectionError, TimeoutError)) or "Connect" in type(seen).__name__:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def download_split_files(remote: RemoteFiles, split: str, cache_dir: str | None, manual_help: str) -> list[str]:
    """Local paths of one split's official files, downloaded once into the datasets download cache (under
    `<cache_dir>/downloads` when given) and reused offline. A transfer cut short is tried again from the start, up
    to DOWNLOAD_ATTEMPTS times: datasets writes it to a `.incomplete` file that never enters the cache."""
    urls = remote_urls(remote, split)
    # use_etag=False: a cached file is reused without asking the server, so a cached download works offline.
    config = DownloadConfig(
        cache_dir=os.path.join(cache_dir, "downloads") if cache_dir else None, use_etag=False, disable_tqdm=True
    )
    manager = DownloadManager(download_config=config)
    paths = []
    for url in urls:
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            try:
                # .gz files are unpacked (and cached unpacked), so the conversion reads plain text.
                paths.append(manager.download_and_extract(url))
                break
            except OfflineModeIsEnabled:
                raise QADataError(
                    f"{url}: not downloaded yet, and offline (HF_HUB_OFFLINE is set). {manual_help}") from None
            except FileNotFoundError as err:
                if (unreachable := connection_failure(err)) is not None:
                    raise QADataError(
                        f"{url}: the network is unreachable ({unreachable}). Offline: {manual_help}; and set "
                        "HF_HUB_OFFLINE=1 so that nothing tries the network"
                    ) from None
                raise QADataError(f"{url}: not found ({err}); {manual_help}") from None
            except Exception as err:
                if attempt == DOWNLOAD_ATTEMPTS:
                    raise QADataError(
                        f"{url}: download failed {attempt} times ({type(err).__name__}: {err}); {manual_help}"
                    ) from err
                logger.warning("%s: download attempt %d failed (%s: %s); trying again", url, attempt,
                               type(err).__name__, err)
                time.sleep(attempt)
    return paths
