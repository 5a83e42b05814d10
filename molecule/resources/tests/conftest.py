# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pytest hooks and fixtures of the Molecule scenarios' testinfra tests.

The helpers the tests import are in the package beside this file,
flaskfleet_testlib, one module per concern. Hosts are reached through the
container engine's CLI, not through Ansible; the instance list comes from
Molecule's inventory.
"""
from __future__ import annotations

import sys

import pytest

from flaskfleet_testlib.ansible_cli import gather_facts
from flaskfleet_testlib.cpu import TEST_CPU, cpu_seconds
from flaskfleet_testlib.engine import instance_host, published_port
from flaskfleet_testlib.faults import FAULTS_FULL, write_fault_table
from flaskfleet_testlib.inventory import group_hosts
from flaskfleet_testlib.stack import ROOT

# The checkout as the flaskfleet.stack collection (made by `make deps`).
sys.path.insert(0, str(ROOT / ".cache" / "self"))


def pytest_configure(config):
    config.addinivalue_line("markers", "fault: a fault of the fault suite; records what it measured (record_fault)")


def pytest_collection_modifyitems(config, items):
    # The consumer test (test_consumer.py) converges the host with another
    # repository's settings: it runs after every other test.
    items.sort(key=lambda item: item.path.name == "test_consumer.py")
    if FAULTS_FULL:
        others = [item for item in items if not item.get_closest_marker("fault")]
        config.hook.pytest_deselected(items=others)
        items[:] = [item for item in items if item.get_closest_marker("fault")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):  # pylint: disable=unused-argument
    # Each test's CPU seconds, its fixtures' converges included: the suite's cost is the controller's CPU.
    before = cpu_seconds()
    yield
    TEST_CPU[item.nodeid] = cpu_seconds() - before


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # pylint: disable=unused-argument
    # Each phase's report on the item (item.rep_call): a fixture's teardown can tell a failed test.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def pytest_terminal_summary(terminalreporter):
    if not TEST_CPU:
        return
    terminalreporter.section("most CPU (this pytest and what it ran, user + system)")
    for nodeid, cpu in sorted(TEST_CPU.items(), key=lambda kv: -kv[1])[:15]:
        terminalreporter.write_line(f"{cpu:7.1f} s  {nodeid}")
    terminalreporter.write_line(f"{cpu_seconds():7.1f} s  in all ({len(TEST_CPU)} tests)")


def pytest_sessionfinish(session):  # pylint: disable=unused-argument
    # The rows of this run, for `make faults`' table (tools/faults/report.py).
    write_fault_table()


def pytest_generate_tests(metafunc):
    # `instance`: each web host (the tests of the web stack); `any_instance`: every host.
    if "instance" in metafunc.fixturenames:
        metafunc.parametrize("instance", group_hosts("flask_web"), scope="module")
    if "any_instance" in metafunc.fixturenames:
        metafunc.parametrize("any_instance", group_hosts(), scope="module")


@pytest.fixture(scope="module")
def host(instance):
    """A testinfra host for one Molecule instance."""
    return instance_host(instance)


@pytest.fixture(scope="module")
def facts(instance):
    """The instance's ansible_facts (see gather_facts)."""
    return gather_facts(instance)


@pytest.fixture(scope="module")
def published(instance):
    """Controller-side 127.0.0.1 ports of the instance's 80 and 443."""
    return {port: published_port(instance, port) for port in (80, 443)}
