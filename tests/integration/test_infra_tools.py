"""The deploy files through the tools that consume or check them: terraform fmt, checkov,
hadolint, yamllint, gcloud's upload list."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_terraform_is_formatted() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed: `terraform fmt -check` cannot run")
    done = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "infra"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"run terraform fmt -recursive infra:\n{done.stdout}"


@pytest.fixture(scope="module")
def infra_tools() -> Path:
    from devtools import infra_tools

    try:
        return infra_tools.ensure()
    except infra_tools.ToolMissing as e:
        pytest.skip(str(e))


def test_checkov_passes_and_every_skip_gives_its_reason(infra_tools: Path) -> None:
    checkov = [str(infra_tools / "checkov"), "-d", "infra", "--framework", "terraform"]
    done = subprocess.run(
        [*checkov, "--skip-download", "--output", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # offline: no policy metadata fetch
    )
    report = json.loads(done.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert done.returncode == 0 and not failed, failed
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 50  # it read the module, not an empty folder
    for check in report["results"]["skipped_checks"]:  # `# checkov:skip=ID: reason` in infra/
        reason = check["check_result"].get("suppress_comment", "").strip()
        assert len(reason) > 20, (check["check_id"], check["resource"], reason)


def test_hadolint_passes_on_the_job_dockerfile(infra_tools: Path, tmp_path: Path) -> None:
    hadolint = infra_tools / "hadolint"
    lint = [str(hadolint), "--config", str(ROOT / ".hadolint.yaml")]
    done = subprocess.run(
        [*lint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python app.py\n")
    refused = subprocess.run([*lint, str(bad)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "DL3007" in refused.stdout  # it does check


def test_yaml_files_pass_yamllint() -> None:
    from yamllint import linter  # type: ignore[import-untyped]
    from yamllint.config import YamlLintConfig  # type: ignore[import-untyped]

    config = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    files = [ROOT / "cloudbuild.yaml", ROOT / ".yamllint.yaml", ROOT / ".hadolint.yaml"]
    found = [
        f"{path.name}:{p.line}: {p.message}"
        for path in files
        for p in linter.run(path.read_text(), config, str(path))
    ]
    assert found == []
    assert list(linter.run("a: 1\na: 2\n", config))  # duplicate keys are caught


def test_gcloud_upload_leaves_env_data_and_virtualenvs_out(tmp_path: Path) -> None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed: its upload list cannot be computed")
    shutil.copy(ROOT / ".gcloudignore", tmp_path / ".gcloudignore")
    planted = [
        ".env",
        ".env.local",
        "functions/.env",
        "data/movies.sqlite",
        "functions/data/x.png",
        ".venv/lib/site.py",
        "venv/lib/site.py",
        "functions/deepflix/__pycache__/a.cpython-311.pyc",
        "functions/deepflix/settings.py",
        "functions/main.py",
        "functions/requirements.txt",
        "cloudbuild.yaml",
        "Dockerfile",
        "infra/main.tf",
    ]
    for name in planted:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    done = subprocess.run(
        [gcloud, "meta", "list-files-for-upload", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    uploaded = set(done.stdout.split())
    assert uploaded == {
        "functions/deepflix/settings.py",
        "functions/main.py",
        "functions/requirements.txt",
        "cloudbuild.yaml",
        "Dockerfile",
        "infra/main.tf",
    }
    assert not any(Path(f).name.startswith(".env") for f in uploaded)


class _Recorder(BaseHTTPRequestHandler):
    """Just enough of Cloud Storage, Resource Manager and Cloud Build for `gcloud builds submit`."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append((self.command, self.path, dict(self.headers), body))
        path = self.path
        out: dict[str, Any] = {}
        if path.startswith("/storage/v1/b?"):
            bucket = f"{PROJECT}_cloudbuild"
            out = {"items": [{"name": bucket, "id": bucket, "projectNumber": "123"}]}
        elif path.startswith("/storage/v1/b/"):
            out = {"name": f"{PROJECT}_cloudbuild", "projectNumber": "123"}
        elif path.startswith("/upload/storage/"):
            size = re.search(rb'\{"size": "(\d+)"\}', body)
            out = {
                "name": "source/s.tgz",
                "bucket": f"{PROJECT}_cloudbuild",
                "generation": "1",
                "size": size.group(1).decode() if size else "0",
            }
        elif "/builds" in path and self.command == "POST":
            out = {
                "name": f"operations/build/{PROJECT}/b1",
                "metadata": {
                    "@type": METADATA_TYPE,
                    "build": {"id": "b1", "projectId": PROJECT, "status": "QUEUED"},
                },
            }
        elif f"/projects/{PROJECT}" in path:
            out = {"projectId": PROJECT, "projectNumber": "123"}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


PROJECT = "acme-dev"
METADATA_TYPE = "type.googleapis.com/google.devtools.cloudbuild.v1.BuildOperationMetadata"


def _uploaded_names(body: bytes) -> list[str]:
    """The file names in the source tarball of a multipart upload."""
    delimiter = body.split(b"\n", 1)[0].rstrip(b"\r")  # --<boundary>, as the body opens
    assert delimiter.startswith(b"--")
    parts = body.split(delimiter)
    (tar_part,) = [p for p in parts if b"application/x-tar" in p]
    payload = re.split(rb"\r?\n\r?\n", tar_part, maxsplit=1)[1].removesuffix(b"\n")
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        return tar.getnames()


def test_make_deploy_submits_the_build_for_dev(tmp_path: Path) -> None:
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        pytest.skip("gcloud is not installed: make deploy cannot run against a recorder")
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),
        "CLOUDSDK_CORE_PROJECT": PROJECT,
        "CLOUDSDK_AUTH_ACCESS_TOKEN": "token",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDBUILD": base,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": base + "storage/v1/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER": base,
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SERVICEUSAGE": base,
    }
    try:
        refused = subprocess.run(
            ["make", "-s", "deploy", "ENV=prod", "TF_STATE_BUCKET=state"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode != 0 and "approved Cloud Build trigger" in refused.stdout
        assert not _Recorder.requests
        done = subprocess.run(
            ["make", "-s", "deploy", "ENV=dev", "TF_STATE_BUCKET=state", "GCLOUD_FLAGS=--async"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        server.shutdown()
    assert done.returncode == 0, (done.stderr, [r[:2] for r in _Recorder.requests])
    (upload,) = [r for r in _Recorder.requests if r[1].startswith("/upload/storage/")]
    names = _uploaded_names(upload[3])
    assert "functions/main.py" in names and "cloudbuild.yaml" in names and "Dockerfile" in names
    assert not [n for n in names if Path(n).name == ".env" or n.startswith((".venv", "data/"))]
    (create,) = [r for r in _Recorder.requests if r[0] == "POST" and "/builds" in r[1]]
    assert create[1].startswith(f"/v1/projects/{PROJECT}/locations/global/builds")
    build = json.loads(create[3])
    assert build["substitutions"]["_ENV"] == "dev"
    assert build["substitutions"]["_TF_STATE_BUCKET"] == "state"
    assert [s["id"] for s in build["steps"]][-1] == "terraform-apply"
