"""Without the `sandbox` extra Leash still runs on a real cloud, and asking for the sandbox says
how to install it.

Each test runs Python in a subprocess where the extra's modules cannot be imported (a meta-path
finder refuses them, as an interpreter without them installed would), so the test process's
own moto, flask and emulators are never in the way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.sandbox_extra import INSTALL_HINT

ROOT = Path(__file__).resolve().parents[2]
# What `pip install .` leaves out (pyproject.toml's `sandbox` extra). cryptography is not
# here: azure-identity needs it in production too.
EXTRA_ONLY = ("moto", "flask", "flask_cors", "werkzeug", "celpy")

WITHOUT_THE_EXTRA = textwrap.dedent(
    f"""
    import importlib.abc
    import sys

    class WithoutTheSandboxExtra(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in {EXTRA_ONLY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, WithoutTheSandboxExtra())
    """
)


def _python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` without the extra, on a fresh SQLite file, and return what it did."""
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LEASH_")},
        "LEASH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'leash.db'}",
        "LEASH_AUDIT_KEY": "k" * 64,
        "LEASH_PORT": "0",
        **env,
    }
    return subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", WITHOUT_THE_EXTRA + textwrap.dedent(code)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _leash(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` (the `leash` command) without the extra."""
    code = f"""
    import runpy
    sys.argv = ["leash", *{args!r}]
    runpy.run_module("bot", run_name="__main__", alter_sys=True)
    """
    return _python(code, tmp_path, **env)


def test_every_production_module_imports_without_the_extra(tmp_path: Path) -> None:
    code = f"""
    import importlib
    import pkgutil

    # The emulators are the extra; migrations run only under alembic; __main__ runs the CLI.
    skipped = ("cloud.sandbox", "bot.store.migrations")
    names = []
    for package in ("bot", "cloud", "scheduler"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if info.name.startswith(skipped) or info.name.endswith(".__main__"):
                continue
            importlib.import_module(info.name)
            names.append(info.name)
    leaked = sorted(m for m in sys.modules if m.partition(".")[0] in {EXTRA_ONLY!r})
    assert not leaked, leaked
    assert "cloud.sandbox" not in sys.modules
    print(len(names))
    """
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 100, "the walk found too few modules to mean anything"


def test_an_aws_leash_builds_without_the_extra(tmp_path: Path) -> None:
    code = f"""
    import asyncio
    from bot.app import build
    from bot.config import load_settings

    async def main():
        leash = build(load_settings())
        try:
            print(sorted(leash.providers), leash.sandbox)
        finally:
            await leash.close()

    asyncio.run(main())
    assert not [m for m in sys.modules if m.partition(".")[0] in {EXTRA_ONLY!r}]
    """
    done = _python(code, tmp_path, LEASH_CLOUD="aws", LEASH_AWS_REGION="us-east-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['aws']", "None"]


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param(["serve", "--sandbox", "--no-console"], {}, id="serve --sandbox"),
        pytest.param(
            ["serve", "--no-console"], {"LEASH_CLOUD": "sandbox"}, id="LEASH_CLOUD=sandbox"
        ),
        pytest.param(["sandbox"], {}, id="leash sandbox"),
    ],
)
def test_asking_for_the_sandbox_without_the_extra_says_how_to_install_it(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    done = _leash(args, tmp_path, **env)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "pip install '.[sandbox]' in Leash's checkout" in INSTALL_HINT
    hint = [line for line in done.stderr.splitlines() if INSTALL_HINT in line]
    assert hint == [f"Error: {INSTALL_HINT} (moto is not installed)"], done.stderr
