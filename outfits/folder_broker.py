"""The demo's broker in a folder (`folder://`): kombu's filesystem transport, each file
written whole before anyone can open it.

kombu writes a message in place: it creates the file, then writes it. A worker polling the
folder between the two moves the empty file away and fails to decode it (celery/kombu#1551):
nothing catches that error, the worker stops, and an admin's Retrain stays queued for ever.
It creates an exchange's table of queues the same way. Here each is written under a name the
folder's readers skip and put in place by a rename or a link (atomic within a folder), so it
is read whole or not at all.
"""

import contextlib
import os
import uuid
from pathlib import Path
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps

SCHEME = "folder"


def transport_options(folder: str | os.PathLike) -> dict[str, str]:
    """Messages and exchange tables in one folder (kombu's default tables go to ./control)."""
    return {key: str(folder) for key in ("data_folder_in", "data_folder_out", "control_folder")}


def hidden_partner(path: str) -> str:
    """Where `path` is written first: a name no reader of the folder takes (they match
    `<queue>.msg` after the first dot, and `<exchange>.exchange`)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex}.partial")


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs) -> None:
        # kombu's own name: readers take `<ms>_<uuid>.<queue>.msg` in order of the milliseconds.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = hidden_partner(final)
        try:
            Path(partial).write_text(dumps(payload))
            os.replace(partial, final)
        except OSError as error:
            with contextlib.suppress(FileNotFoundError):
                os.remove(partial)
            raise ChannelError(f"Cannot add file {final!r} to directory") from error

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        # The table exists, whole, before kombu opens it to add the queue under its lock.
        table = str(self._exchange_file(exchange))
        self.control_folder.mkdir(exist_ok=True)
        partial = hidden_partner(table)
        try:
            Path(partial).write_text("[]")
            with contextlib.suppress(FileExistsError):  # another process made it first
                os.link(partial, table)
        except OSError as error:
            raise ChannelError(f"Cannot create {table}") from error
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(partial)
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    """Make `folder://` a broker URL (in every process that imports the Celery app)."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
