"""Only what pyproject.toml cannot say: the packages are ecglit's (found) plus ecglit.conf, which
pyproject maps onto the checkout's conf/ folder."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["ecglit", "ecglit.*"]), "ecglit.conf"])
