"""Tests of the model side (models/). All are marked ``models`` (select with ``-m models``); the
directory is not collected where torch is not installed (the optional 'models' extra)."""
import importlib.util
import pathlib

import pytest

if importlib.util.find_spec("torch") is None:
    collect_ignore_glob = ["test_*.py"]


def pytest_collection_modifyitems(config, items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.models)


@pytest.fixture(scope="session")
def mamba_ssm():
    from models_helpers import import_mamba_ssm

    return import_mamba_ssm()
