"""Whether a run's or a cache's owner process has ended, checked on real processes."""

import socket
import subprocess
import sys

from pipeline.system import processes


def test_a_live_process_has_not_ended_and_one_that_exited_has():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not processes.has_ended(socket.gethostname(), child.pid)
        assert not processes.has_ended(socket.gethostname(), str(child.pid))  # as in a record
    finally:
        child.kill()
        child.wait()
    assert processes.has_ended(socket.gethostname(), child.pid)


def test_this_process_has_not_ended():
    host, pid = processes.current()
    assert not processes.has_ended(host, pid)


def test_another_hosts_process_cannot_be_looked_at_so_counts_as_running():
    assert not processes.has_ended("no-such-host.invalid", 999_999_999)


def test_a_damaged_pid_on_this_host_names_no_process():
    """pid 0 or -1 would signal a whole process group: they must not count as alive."""
    for pid in (None, "", "abc", 0, -1):
        assert processes.has_ended(socket.gethostname(), pid), pid
