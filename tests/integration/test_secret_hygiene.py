"""The generator API key: read from the environment or `.env`, never written to a log."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from deepflix import logs
from deepflix.pipeline.errors import StageWorkError
from deepflix.runtime.compose import hosted_models, inline_executor
from deepflix.settings import Settings
from tests.genai_fake import API_KEY, fake_genai, invalid_argument, server_error

pytestmark = pytest.mark.integration


def test_the_key_from_dotenv_reaches_the_model_and_no_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"DEEPFLIX_GENAI_API_KEY={API_KEY}\n")
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)  # every library's debug lines too (HTTP headers, retries)
    try:
        with fake_genai() as fake:
            settings = Settings(generators="gemini", genai_base_url=fake.url)
            assert settings.genai_api_key is not None
            assert settings.genai_api_key.get_secret_value() == API_KEY  # from .env
            logging.getLogger("deepflix.test").info("settings: %s %r", settings, settings)
            fake.queue("generateContent", server_error(), invalid_argument("bad prompt"))
            story = inline_executor(settings, artifacts=None, workdir=None)  # type: ignore[arg-type]
            with pytest.raises(StageWorkError):
                story.generators.story.write_story(
                    prompt="p", title=None, style="s", scene_count=2, seed=1
                )
            hosted_models(settings)
            headers = [h for _, h, _ in fake.requests]
            assert headers and all(API_KEY in h.values() for h in headers)  # the key was sent
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    text = captured.getvalue()
    assert text, "nothing was logged: the test would prove nothing"
    assert API_KEY not in text
