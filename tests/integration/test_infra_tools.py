"""The deploy files through the tools that consume them: terraform fmt, gcloud's upload list."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
