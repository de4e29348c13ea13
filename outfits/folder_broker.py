"""The demo's broker in a folder (`folder://`): kombu's filesystem transport, each message
written whole before it appears.

kombu writes a message in place: it creates the file, then writes it. A worker polling the
folder between the two moves the empty file away, fails to decode it and the message is lost
(celery/kombu#1551): an admin's Retrain stayed queued for ever. Written under a name the
folder's readers skip and renamed into place (atomic within a folder), a message is read
whole or not at all.
"""

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps

SCHEME = "folder"


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs) -> None:
        # kombu's own name: readers take `<ms>_<uuid>.<queue>.msg` in order of the milliseconds.
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")  # never `<queue>.msg`
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as error:
            raise ChannelError(f"Cannot add file {final!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel


def register() -> None:
    """Make `folder://` a broker URL (in every process that imports the Celery app)."""
    TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
