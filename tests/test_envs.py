"""Submission environments built by uv (benchmark/executors/envs.py), for real and
offline: uv runs with UV_OFFLINE=1, so every package comes from the local sources pip is
configured with on these machines (find-links /opt/wheels, the file:// indexes), into
a temporary folder of environments and a temporary uv cache on the same filesystem."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from benchmark.executors.envs import (EnvironmentBuildError, ensure_env, env_key, pip_settings,
                                      uv_source_options, write_lock)

# Tiny and pure Python, in the local index (/opt/pypi/simple).
SMALL = ["six==1.17.0"]
EXACT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[^=<>~!,;\s]+$")  # name==version, nothing looser


def local_sources() -> bool:
    settings = pip_settings()
    indexes = settings.get("index-url", []) + settings.get("extra-index-url", [])
    return bool(settings.get("find-links")) or any(url.startswith("file:") for url in indexes)


pytestmark = pytest.mark.skipif(not local_sources(), reason="pip is configured with no local package sources")


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    root = tmp_path_factory.mktemp("uv-envs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLM4REC_ENVS", str(root / "envs"))
        patch.setenv("LLM4REC_UV_CACHE", str(root / "uv"))
        patch.setenv("UV_OFFLINE", "1")  # uv's own switch: no network, local files only
        yield root


@pytest.fixture(scope="module")
def small(offline):
    messages: list[str] = []
    return ensure_env(SMALL, name="small", log=messages.append), messages


def site_packages(environment):
    return next((environment.folder / "lib").glob("python3.*/site-packages"))


def test_a_small_environment_is_built_with_exact_pins_and_shows_progress(small):
    environment, messages = small
    assert environment.built is True and (environment.folder / ".complete").is_file()
    lines = environment.lock_file.read_text().splitlines()
    assert "six==1.17.0" in lines
    assert all(EXACT.match(line) for line in lines), lines
    names = {line.split("==")[0] for line in lines}
    assert {"numpy", "pandas", "pydantic", "pyyaml"} <= names  # what the worker imports
    assert any("building its environment" in m for m in messages)
    assert any(m.strip().startswith("Installed") for m in messages)
    # The environment has exactly the locked versions.
    probe = "import six, numpy, pandas, pydantic, yaml; print(six.__version__, numpy.__version__)"
    shown = subprocess.run([str(environment.python), "-c", probe], capture_output=True, text=True, check=True)
    numpy = next(line for line in lines if line.startswith("numpy=="))
    assert shown.stdout.split() == ["1.17.0", numpy.split("==")[1]]


def test_files_are_hard_linked_from_uvs_cache_and_bytecode_is_compiled(small, offline):
    environment, _ = small
    installed = site_packages(environment) / "six.py"
    cached = [path for path in (offline / "uv").rglob("six.py") if path.stat().st_ino == installed.stat().st_ino]
    assert installed.stat().st_nlink >= 2 and cached
    # A sandboxed worker cannot write __pycache__, so the build compiles it.
    assert (site_packages(environment) / "__pycache__" / f"six.{sys.implementation.cache_tag}.pyc").is_file()


def test_a_second_call_reuses_the_environment_from_the_cache(small):
    environment, _ = small
    lock = environment.lock_file.read_bytes()
    messages: list[str] = []
    again = ensure_env(["  six==1.17.0  # a comment", ""], name="small", log=messages.append)
    assert again.built is False and again.folder == environment.folder
    assert again.lock_file.read_bytes() == lock
    assert any("found in the cache" in m for m in messages)
    assert env_key(SMALL) != env_key(SMALL + ["iniconfig"])


def test_a_requirement_that_does_not_resolve_fails_naming_it(offline):
    requirements = ["this-package-does-not-exist==0"]
    with pytest.raises(EnvironmentBuildError, match="this-package-does-not-exist") as failure:
        ensure_env(requirements, name="unbuildable", log=lambda _: None)
    assert "`uv pip compile` exited with code" in str(failure.value)
    # Nothing half-built is left to be mistaken for a finished environment.
    assert not (offline / "envs" / env_key(requirements)).exists()


def test_torch_resolves_to_the_local_cpu_wheel(offline, tmp_path):
    lock = write_lock(["torch==2.13.0"], tmp_path, name="torch", log=lambda _: None)
    assert "torch==2.13.0+cpu" in lock.read_text().splitlines()


def test_without_uv_the_error_says_how_to_install_it(offline, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "uv", None)  # the package cannot be imported
    monkeypatch.setenv("PATH", str(tmp_path))  # and no uv on PATH
    with pytest.raises(EnvironmentBuildError, match=r"uv is not installed.*pip install uv"):
        ensure_env(SMALL + ["iniconfig"], name="no-uv", log=lambda _: None)
    assert not (offline / "envs" / env_key(SMALL + ["iniconfig"])).exists()


def test_pip_variables_override_pips_files(monkeypatch):
    monkeypatch.setenv("PIP_FIND_LINKS", "/wheels/a /wheels/b")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    settings = pip_settings()
    assert settings["find-links"] == ["/wheels/a", "/wheels/b"]
    options = uv_source_options(settings)
    assert options[options.index("--find-links") + 1] == "/wheels/a" and "--no-index" in options
    assert options[:2] == ["--index-strategy", "unsafe-best-match"]
