"""Everything about the package is in pyproject.toml; this adds one step to its build: the wheel
ships the Hydra configs (conf/, at the repository's top level) as ogan_pl/conf, so that the
installed commands run from any folder (ogan_pl.run.cli.CONF_DIR)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithConfigs(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads conf/ where it is
        target = Path(self.build_lib) / "ogan_pl" / "conf"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(
            Path(__file__).resolve().parent / "conf", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )


setup(cmdclass={"build_py": BuildWithConfigs})
