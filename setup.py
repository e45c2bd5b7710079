"""One distribution: the `morec` package, its bundled configs and the `morec` command."""

from setuptools import find_packages, setup

setup(
    name="morec",
    version="0.1.0",
    description="Offline model-based RL with reward-consistent dynamics models (MOREC) on tianshou",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["morec", "morec.*"]) + ["morec.configs"],
    # the per-task training configs: configs/ in a checkout, morec/configs/ once installed (morec/bundled_configs.py)
    package_dir={"morec.configs": "configs"},
    package_data={"morec.configs": ["**/*.yaml"]},
    install_requires=[
        # torch 2.13.0 is the version this project is developed and tested with. The pin fixes the
        # version, not the build: which build pip gets depends on the index (the README says how to
        # ask for the CPU build). GPU users install their CUDA build of a compatible torch first
        # and pip keeps it.
        "torch>=2.4,<=2.13.0",
        "numpy>=1.24,<3",
        "gymnasium[mujoco]>=1.0,<2",
        "mujoco>=3.0,<5",
        "tianshou>=2.0.1,<2.1",
        "tensorboard>=2.14",
        "h5py>=3.8",
        "tqdm>=4.60",
        "pyyaml>=6.0",
        "matplotlib>=3.7",  # suites draw their learning curves
    ],
    extras_require={
        "minari": ["minari>=0.5,<0.6"],
        # suites on Ray (a local instance or a cluster) and Ray Tune sweeps; without it suites use a local pool
        "ray": ["ray[tune]>=2.40,<3"],
        # `make test`: ruff (ruff.toml) and mypy (mypy.ini) lint first
        "test": ["pytest>=8,<10", "ruff>=0.17,<0.18", "mypy>=1.15,<2", "minari>=0.5,<0.6", "ray[tune]>=2.40,<3"],
    },
    entry_points={"console_scripts": ["morec=morec.cli:main"]},
)
