"""The demo's broker in a folder: every message a web process sends reaches a worker polling
the folder as it is written, once and whole. kombu's own filesystem transport let the reader
catch 4 to 8 in 1,000 of them empty (12–25 of 3,000 here), and a worker that reads one stops:
a retrain stayed queued for ever."""

import json
import subprocess
import sys
import textwrap
import time

from kombu import Connection

from outfits import folder_broker
from tests.support import ROOT

MESSAGES = 2000

SENDER = textwrap.dedent(
    """
    import sys
    from kombu import Connection
    from outfits import folder_broker
    options = folder_broker.transport_options(sys.argv[1])
    with Connection(transport=folder_broker.Transport, transport_options=options) as connection:
        queue = connection.SimpleQueue("training")
        for number in range(int(sys.argv[2])):
            queue.put({"number": number})
    """
)


def test_a_worker_polling_the_folder_reads_every_message_whole(tmp_path):
    received: list[int] = []
    unreadable: list[str] = []
    # The sender is another process, as the web server is; the reader polls without pause,
    # the worst case for a message caught half-written.
    sender = subprocess.Popen(
        [sys.executable, "-c", SENDER, str(tmp_path), str(MESSAGES)], cwd=ROOT
    )
    try:
        with Connection(
            transport=folder_broker.Transport,
            transport_options=folder_broker.transport_options(tmp_path),
        ) as connection:
            queue = connection.SimpleQueue("training")
            deadline = time.monotonic() + 120
            while len(received) + len(unreadable) < MESSAGES and time.monotonic() < deadline:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    if sender.poll() is not None and not list(tmp_path.glob("*.msg")):
                        break  # all sent, nothing left to read
                    continue
                except ValueError as error:  # an empty or partial file: what stops a worker
                    unreadable.append(str(error))
                    continue
                received.append(message.payload["number"])
                message.ack()
        assert sender.wait(timeout=60) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    assert not unreadable, unreadable[:3]
    assert sorted(received) == list(range(MESSAGES))
    left = [path.name for path in tmp_path.iterdir() if ".msg" in path.name]  # hidden ones too
    assert not left, f"messages left behind, whole or half-written: {left[:3]}"
    # Both processes bound the queue (kombu's state is per process): one table, whole.
    table = json.loads((tmp_path / "training.exchange").read_text())
    assert [row[2] for row in table] == ["training"]
    assert not [path.name for path in tmp_path.iterdir() if path.name.endswith(".partial")]
