# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests for the flaskfleet.stack.gunicorn_plan and celery_plan filters.

Every expected number below was worked out by hand from the documented rules;
the tests never recompute them with the plugin's formulas.
"""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.flaskfleet.stack.plugins.filter.plan import FilterModule

FILTERS = FilterModule().filters()
GUNICORN = FILTERS['gunicorn_plan']
CELERY = FILTERS['celery_plan']

H1 = {'processor_vcpus': 1, 'memtotal_mb': 512}
H2 = {'processor_vcpus': 2, 'memtotal_mb': 1024}
H4 = {'processor_vcpus': 4, 'memtotal_mb': 8192}
H64 = {'processor_vcpus': 64, 'memtotal_mb': 524288}
NPROC = {'processor_nproc': 2, 'memtotal_mb': 8192}
PRODUCT = {'processor_count': 2, 'processor_cores': 2, 'processor_threads_per_core': 2, 'memtotal_mb': 8192}
NO_CPU = {'memtotal_mb': 8192}
PARTIAL_CPU = {'processor_count': 2, 'processor_cores': 4, 'memtotal_mb': 8192}
REAL_TOTAL = {'processor_vcpus': 4, 'memory_mb': {'real': {'total': 8192}}}
STRINGS = {'processor_vcpus': '4', 'processor_nproc': 2, 'memtotal_mb': '8192'}

GUNICORN_KEYS = {
    'workers', 'threads', 'worker_class', 'class_reason', 'workload', 'worker_connections', 'max_requests',
    'max_requests_jitter', 'nofile_limit', 'timeout', 'graceful_timeout', 'keepalive', 'cpus', 'memory_mb', 'reserved_memory_mb', 'budget_mb',
    'worker_memory_mb', 'cpu_bound', 'memory_bound', 'planned_memory_mb', 'memory_high_mb', 'memory_max_mb', 'bound', 'reason',
}
CELERY_KEYS = {
    'concurrency', 'pool', 'workload', 'max_tasks_per_child', 'max_memory_per_child_kb', 'prefetch_multiplier', 'cpus',
    'memory_mb', 'reserved_memory_mb', 'budget_mb', 'child_memory_mb', 'cpu_bound', 'memory_bound', 'planned_memory_mb', 'memory_high_mb',
    'memory_max_mb', 'bound', 'reason',
}

# id, facts, options,
# (cpus, memory_mb, reserved, cpu_bound, memory_bound, workers, bound, class, threads, keepalive, planned, high, max)
GUNICORN_TABLE = [
    ('1cpu-512-default', H1, {}, (1, 512, 256, 2, 1, 1, 'memory', 'gthread', 4, 65, 200, 250, 300)),
    ('1cpu-512-sync', H1, {'worker_class': 'sync'}, (1, 512, 256, 3, 1, 1, 'memory', 'sync', 1, 2, 200, 250, 300)),
    ('1cpu-512-min-mem-too-small', H1, {'worker_memory_mb': 300}, (1, 512, 256, 2, 0, 1, 'min', 'gthread', 4, 65, 350, 438, 525)),
    ('1cpu-512-min2', H1, {'worker_class': 'sync', 'min_workers': 2}, (1, 512, 256, 3, 1, 2, 'min', 'sync', 1, 2, 350, 438, 525)),
    ('2cpu-1g-r600-sync', H2, {'worker_class': 'sync', 'reserved_memory_mb': 600},
     (2, 1024, 600, 5, 2, 2, 'memory', 'sync', 1, 2, 350, 438, 525)),
    ('2cpu-1g-r600-gthread', H2, {'worker_class': 'gthread', 'reserved_memory_mb': 600},
     (2, 1024, 600, 3, 2, 2, 'memory', 'gthread', 4, 65, 350, 438, 525)),
    ('2cpu-1g-r600-gevent-200mb', H2, {'worker_class': 'gevent', 'reserved_memory_mb': 600, 'worker_memory_mb': 200},
     (2, 1024, 600, 2, 1, 1, 'memory', 'gevent', 1, 65, 250, 313, 375)),
    ('2cpu-1g-default-reserve', H2, {}, (2, 1024, 256, 3, 4, 3, 'cpu', 'gthread', 4, 65, 500, 625, 750)),
    ('2cpu-1g-reserve-all', H2, {'worker_class': 'sync', 'reserved_memory_mb': 2048},
     (2, 1024, 2048, 5, 0, 1, 'min', 'sync', 1, 2, 200, 250, 300)),
    ('4cpu-8g-workload-cpu', H4, {'workload': 'cpu'}, (4, 8192, 2048, 9, 40, 9, 'cpu', 'sync', 1, 2, 1400, 1750, 2100)),
    ('4cpu-8g-workload-io', H4, {'workload': 'io'}, (4, 8192, 2048, 4, 40, 4, 'cpu', 'gevent', 1, 65, 650, 813, 975)),
    ('4cpu-8g-workload-mixed', H4, {'workload': 'mixed'}, (4, 8192, 2048, 5, 40, 5, 'cpu', 'gthread', 4, 65, 800, 1000, 1200)),
    ('4cpu-8g-gthread-io-threads', H4, {'worker_class': 'gthread', 'workload': 'io'},
     (4, 8192, 2048, 5, 40, 5, 'cpu', 'gthread', 8, 65, 800, 1000, 1200)),
    ('4cpu-8g-gthread-threads2', H4, {'worker_class': 'gthread', 'threads': 2},
     (4, 8192, 2048, 5, 40, 5, 'cpu', 'gthread', 2, 65, 800, 1000, 1200)),
    ('4cpu-8g-sync-threads1', H4, {'worker_class': 'sync', 'threads': 1}, (4, 8192, 2048, 9, 40, 9, 'cpu', 'sync', 1, 2, 1400, 1750, 2100)),
    ('4cpu-8g-max3', H4, {'worker_class': 'sync', 'max_workers': 3}, (4, 8192, 2048, 9, 40, 3, 'max', 'sync', 1, 2, 500, 625, 750)),
    ('4cpu-8g-gevent-min6', H4, {'worker_class': 'gevent', 'min_workers': 6},
     (4, 8192, 2048, 4, 40, 6, 'min', 'gevent', 1, 65, 950, 1188, 1425)),
    ('4cpu-8g-float-option', H4, {'worker_memory_mb': 150.0}, (4, 8192, 2048, 5, 40, 5, 'cpu', 'gthread', 4, 65, 800, 1000, 1200)),
    ('64cpu-512g-sync', H64, {'worker_class': 'sync'}, (64, 524288, 2048, 129, 3481, 129, 'cpu', 'sync', 1, 2, 19400, 24250, 29100)),
    ('64cpu-512g-default', H64, {}, (64, 524288, 2048, 65, 3481, 65, 'cpu', 'gthread', 4, 65, 9800, 12250, 14700)),
    ('64cpu-512g-gevent-10g', H64, {'worker_class': 'gevent', 'worker_memory_mb': 10000},
     (64, 524288, 2048, 64, 52, 52, 'memory', 'gevent', 1, 65, 520050, 650063, 780075)),
    ('fallback-nproc', NPROC, {'worker_class': 'sync'}, (2, 8192, 2048, 5, 40, 5, 'cpu', 'sync', 1, 2, 800, 1000, 1200)),
    ('fallback-count-cores-threads', PRODUCT, {'worker_class': 'sync'},
     (8, 8192, 2048, 17, 40, 17, 'cpu', 'sync', 1, 2, 2600, 3250, 3900)),
    ('fallback-no-cpu-facts', NO_CPU, {'worker_class': 'sync'}, (1, 8192, 2048, 3, 40, 3, 'cpu', 'sync', 1, 2, 500, 625, 750)),
    ('fallback-partial-cpu-facts', PARTIAL_CPU, {'worker_class': 'sync'}, (1, 8192, 2048, 3, 40, 3, 'cpu', 'sync', 1, 2, 500, 625, 750)),
    ('fallback-memory-real-total', REAL_TOTAL, {}, (4, 8192, 2048, 5, 40, 5, 'cpu', 'gthread', 4, 65, 800, 1000, 1200)),
    ('string-facts', STRINGS, {'workload': 'cpu'}, (4, 8192, 2048, 9, 40, 9, 'cpu', 'sync', 1, 2, 1400, 1750, 2100)),
    # budget_mb (from flaskfleet.stack.memory_budget) replaces memory less the reserve
    ('4cpu-8g-budget-500', H4, {'budget_mb': 500}, (4, 8192, 2048, 5, 3, 3, 'memory', 'gthread', 4, 65, 500, 625, 750)),
    ('1cpu-512-budget-above-memory', H1, {'budget_mb': 10000}, (1, 512, 256, 2, 66, 2, 'cpu', 'gthread', 4, 65, 350, 438, 525)),
    ('2cpu-1g-budget-not-reserve', H2, {'worker_class': 'sync', 'reserved_memory_mb': 2048, 'budget_mb': 650},
     (2, 1024, 2048, 5, 4, 4, 'memory', 'sync', 1, 2, 650, 813, 975)),
    ('4cpu-8g-budget-below-min', H4, {'budget_mb': 100, 'min_workers': 2}, (4, 8192, 2048, 5, 0, 2, 'min', 'gthread', 4, 65, 350, 438, 525)),
]

# id, facts, options,
# (cpus, reserved, cpu_bound, memory_bound, concurrency, bound, prefetch, per_child_kb, planned, high, max)
CELERY_TABLE = [
    ('1cpu-512-default', H1, {}, (1, 256, 1, 0, 1, 'min', 1, 307200, 280, 350, 580)),
    ('1cpu-512-child100', H1, {'child_memory_mb': 100}, (1, 256, 1, 1, 1, 'cpu', 1, 153600, 180, 225, 330)),
    ('2cpu-1g-r600', H2, {'reserved_memory_mb': 600}, (2, 600, 2, 1, 1, 'memory', 1, 307200, 280, 350, 580)),
    ('2cpu-1g-default-reserve', H2, {}, (2, 256, 2, 3, 2, 'cpu', 1, 307200, 480, 600, 880)),
    ('4cpu-8g-cpu', H4, {}, (4, 2048, 4, 30, 4, 'cpu', 1, 307200, 880, 1100, 1480)),
    ('4cpu-8g-io', H4, {'workload': 'io'}, (4, 2048, 8, 30, 8, 'cpu', 4, 307200, 1680, 2100, 2680)),
    ('4cpu-8g-mixed-prefetch2', H4, {'workload': 'mixed', 'prefetch_multiplier': 2}, (4, 2048, 8, 30, 8, 'cpu', 2, 307200, 1680, 2100, 2680)),
    ('4cpu-8g-max2', H4, {'max_concurrency': 2}, (4, 2048, 4, 30, 2, 'max', 1, 307200, 480, 600, 880)),
    ('4cpu-8g-min6', H4, {'min_concurrency': 6}, (4, 2048, 4, 30, 6, 'min', 1, 307200, 1280, 1600, 2080)),
    ('4cpu-8g-child25-planned-cap', H4, {'child_memory_mb': 25}, (4, 2048, 4, 242, 4, 'cpu', 1, 38400, 180, 225, 270)),
    ('64cpu-512g-cpu', H64, {}, (64, 2048, 64, 2610, 64, 'cpu', 1, 307200, 12880, 16100, 19480)),
    ('64cpu-512g-io-4g-children', H64, {'workload': 'io', 'child_memory_mb': 4096},
     (64, 2048, 128, 127, 127, 'memory', 4, 6291456, 520272, 650340, 784464)),
    ('fallback-nproc', NPROC, {}, (2, 2048, 2, 30, 2, 'cpu', 1, 307200, 480, 600, 880)),
    ('fallback-count-cores-threads', PRODUCT, {}, (8, 2048, 8, 30, 8, 'cpu', 1, 307200, 1680, 2100, 2680)),
    ('fallback-no-cpu-facts', NO_CPU, {}, (1, 2048, 1, 30, 1, 'cpu', 1, 307200, 280, 350, 580)),
    ('fallback-memory-real-total', REAL_TOTAL, {}, (4, 2048, 4, 30, 4, 'cpu', 1, 307200, 880, 1100, 1480)),
    ('4cpu-8g-budget-680', H4, {'budget_mb': 680}, (4, 2048, 4, 3, 3, 'memory', 1, 307200, 680, 850, 1180)),
    ('1cpu-512-budget-above-memory', H1, {'budget_mb': 2000}, (1, 256, 1, 9, 1, 'cpu', 1, 307200, 280, 350, 580)),
]


def _ids(table):
    return [row[0] for row in table]


@pytest.mark.parametrize('facts, options, expected', [row[1:] for row in GUNICORN_TABLE], ids=_ids(GUNICORN_TABLE))
def test_gunicorn_plan(facts, options, expected):
    (cpus, memory, reserved, cpu_bound, memory_bound, workers, bound, worker_class, threads, keepalive,
     planned, high, top) = expected
    plan = GUNICORN(facts, **options)
    assert set(plan) == GUNICORN_KEYS
    got = (plan['cpus'], plan['memory_mb'], plan['reserved_memory_mb'], plan['cpu_bound'], plan['memory_bound'],
           plan['workers'], plan['bound'], plan['worker_class'], plan['threads'], plan['keepalive'],
           plan['planned_memory_mb'], plan['memory_high_mb'], plan['memory_max_mb'])
    assert got == (cpus, memory, reserved, cpu_bound, memory_bound, workers, bound, worker_class, threads, keepalive,
                   planned, high, top)
    assert plan['worker_connections'] == 1000
    # recycling scales with what one worker serves at once; jitter is 10 %
    slots = {'sync': 1, 'gthread': threads, 'gevent': 100}[worker_class]
    assert (plan['max_requests'], plan['max_requests_jitter']) == (1000 * slots, 100 * slots)
    assert plan['nofile_limit'] >= max(4096, 2 * {'sync': 1, 'gthread': threads, 'gevent': 1000}[worker_class])
    assert (plan['timeout'], plan['graceful_timeout']) == (30, 30)
    assert plan['workload'] == options.get('workload', 'mixed')
    assert plan['reason'].startswith(f'{workers} {worker_class} worker')
    assert plan['budget_mb'] == options.get('budget_mb')


@pytest.mark.parametrize('facts, options, expected', [row[1:] for row in CELERY_TABLE], ids=_ids(CELERY_TABLE))
def test_celery_plan(facts, options, expected):
    cpus, reserved, cpu_bound, memory_bound, concurrency, bound, prefetch, per_child_kb, planned, high, top = expected
    plan = CELERY(facts, **options)
    assert set(plan) == CELERY_KEYS
    got = (plan['cpus'], plan['reserved_memory_mb'], plan['cpu_bound'], plan['memory_bound'], plan['concurrency'],
           plan['bound'], plan['prefetch_multiplier'], plan['max_memory_per_child_kb'], plan['planned_memory_mb'],
           plan['memory_high_mb'], plan['memory_max_mb'])
    assert got == (cpus, reserved, cpu_bound, memory_bound, concurrency, bound, prefetch, per_child_kb, planned, high, top)
    assert plan['pool'] == 'prefork'
    assert plan['workload'] == options.get('workload', 'cpu')
    assert plan['max_tasks_per_child'] == 1000
    assert plan['reason'].startswith(f'concurrency {concurrency} (prefork, ')
    assert plan['budget_mb'] == options.get('budget_mb')


@pytest.mark.parametrize(
    'plan_filter, facts, options, count_key',
    [(GUNICORN, row[1], row[2], 'workers') for row in GUNICORN_TABLE] + [(CELERY, row[1], row[2], 'concurrency') for row in CELERY_TABLE],
    ids=[f'gunicorn-{row[0]}' for row in GUNICORN_TABLE] + [f'celery-{row[0]}' for row in CELERY_TABLE],
)
def test_invariants(plan_filter, facts, options, count_key):
    plan = plan_filter(facts, **options)
    assert plan[count_key] >= 1
    assert plan['planned_memory_mb'] < plan['memory_high_mb'] < plan['memory_max_mb']
    assert plan['bound'] in ('cpu', 'memory', 'min', 'max')
    assert '\n' not in plan['reason']
    if count_key == 'concurrency':
        # every child may reach its per-child limit before the service cap
        per_child_mb = -(-plan['max_memory_per_child_kb'] // 1024)
        assert plan['memory_max_mb'] >= 80 + plan['concurrency'] * per_child_mb


@pytest.mark.parametrize('facts, options, reason', [
    pytest.param({'processor_vcpus': 2, 'memtotal_mb': 2024}, {'worker_class': 'sync', 'reserved_memory_mb': 600},
                 '5 sync workers: CPU bound 2x2+1=5; memory (1424 MB after 600 MB reserve) would allow 9 of 150 MB', id='cpu'),
    pytest.param(H2, {'worker_class': 'sync', 'reserved_memory_mb': 600},
                 '2 sync workers: memory bound, 424 MB after 600 MB reserve holds 2 of 150 MB; CPU bound 2x2+1=5', id='memory'),
    pytest.param(H1, {'worker_memory_mb': 300},
                 '1 gthread worker x 4 threads: memory left after reserve (256 MB) holds 0 workers of 300 MB; planned min_workers=1',
                 id='min-memory'),
    pytest.param(H4, {'worker_class': 'sync', 'max_workers': 3},
                 '3 sync workers: capped by max_workers=3; CPU bound 2x4+1=9; memory (6144 MB after 2048 MB reserve) would allow 40 of 150 MB',
                 id='max'),
    pytest.param(H4, {'budget_mb': 500},
                 '3 gthread workers x 4 threads: memory bound, the memory budget of 500 MB holds 3 of 150 MB; CPU bound 4+1=5', id='budget-memory'),
    pytest.param(H1, {'budget_mb': 10000},
                 '2 gthread workers x 4 threads: CPU bound 1+1=2; the memory budget (10000 MB) would allow 66 of 150 MB', id='budget-cpu'),
    pytest.param(H1, {'worker_memory_mb': 300, 'budget_mb': 200},
                 '1 gthread worker x 4 threads: the memory budget (200 MB) holds 0 workers of 300 MB; planned min_workers=1', id='budget-min'),
])
def test_gunicorn_reason(facts, options, reason):
    assert GUNICORN(facts, **options)['reason'] == reason


@pytest.mark.parametrize('options, needle', [
    pytest.param({'workload': 'cpu'}, "workload 'cpu' -> sync", id='cpu'),
    pytest.param({'workload': 'io'}, "workload 'io' -> gevent", id='io'),
    pytest.param({'workload': 'mixed'}, "workload 'mixed' -> gthread", id='mixed'),
    pytest.param({'workload': 'io', 'worker_class': 'sync'}, "worker_class 'sync' was given explicitly", id='explicit'),
])
def test_gunicorn_class_reason(options, needle):
    assert needle in GUNICORN(H4, **options)['class_reason']


def test_celery_reason_budget():
    assert CELERY(H4, budget_mb=680)['reason'] == (
        'concurrency 3 (prefork, cpu): memory bound, the memory budget of 680 MB holds 3 of 200 MB; CPU bound 4 (one per vCPU)')


def test_celery_reason_min_memory():
    assert CELERY(H1)['reason'] == (
        'concurrency 1 (prefork, cpu): memory left after reserve (256 MB) holds 0 children of 200 MB; planned min_concurrency=1')


def test_input_not_mutated():
    facts = {'processor_vcpus': 2, 'memory_mb': {'real': {'total': 1024}}}
    snapshot = {'processor_vcpus': 2, 'memory_mb': {'real': {'total': 1024}}}
    GUNICORN(facts, reserved_memory_mb=600)
    CELERY(facts)
    assert facts == snapshot


G = 'gunicorn_plan'
C = 'celery_plan'
ERRORS = [
    # id, filter name, facts, options, message regex (after the FQCN prefix)
    ('g-facts-missing-memory', G, {'processor_vcpus': 2}, {}, 'memtotal_mb'),
    ('c-facts-missing-memory', C, {'processor_vcpus': 2, 'memory_mb': {'swap': {}}}, {}, 'memtotal_mb'),
    ('g-facts-list', G, [H4], {}, 'mapping of host facts'),
    ('c-facts-none', C, None, {}, 'mapping of host facts'),
    ('g-facts-string', G, 'localhost', {}, 'mapping of host facts'),
    ('g-memtotal-zero', G, {'memtotal_mb': 0}, {}, "fact 'memtotal_mb'"),
    ('c-real-total-text', C, {'memory_mb': {'real': {'total': 'lots'}}}, {}, r"fact 'memory_mb\.real\.total'"),
    ('g-vcpus-zero', G, dict(H4, processor_vcpus=0), {}, "fact 'processor_vcpus'"),
    ('g-vcpus-negative', G, dict(H4, processor_vcpus=-2), {}, "fact 'processor_vcpus'"),
    ('c-vcpus-text', C, dict(H4, processor_vcpus='abc'), {}, "fact 'processor_vcpus'"),
    ('c-vcpus-bool', C, dict(H4, processor_vcpus=True), {}, "fact 'processor_vcpus'"),
    ('g-nproc-zero', G, {'processor_nproc': 0, 'memtotal_mb': 1024}, {}, "fact 'processor_nproc'"),
    ('g-cores-text', G, dict(PRODUCT, processor_cores='NA'), {}, "fact 'processor_cores'"),
    ('g-worker-memory-negative', G, H4, {'worker_memory_mb': -1}, "option 'worker_memory_mb' must be >= 1"),
    ('g-worker-memory-zero', G, H4, {'worker_memory_mb': 0}, "option 'worker_memory_mb' must be >= 1"),
    ('g-worker-memory-string', G, H4, {'worker_memory_mb': '200'}, "option 'worker_memory_mb' must be an integer"),
    ('g-worker-memory-float', G, H4, {'worker_memory_mb': 150.5}, "option 'worker_memory_mb' must be an integer"),
    ('g-min-workers-zero', G, H4, {'min_workers': 0}, "option 'min_workers' must be >= 1"),
    ('g-max-workers-bool', G, H4, {'max_workers': True}, "option 'max_workers' must be an integer"),
    ('g-threads-text', G, H4, {'threads': 'abc'}, "option 'threads' must be an integer"),
    ('g-threads-zero', G, H4, {'threads': 0}, "option 'threads' must be >= 1"),
    ('g-reserved-negative', G, H4, {'reserved_memory_mb': -1}, "option 'reserved_memory_mb' must be >= 0"),
    ('g-unknown-class', G, H4, {'worker_class': 'uvicorn'}, "option 'worker_class' must be one of sync, gthread, gevent"),
    ('g-class-not-string', G, H4, {'worker_class': ['sync']}, "option 'worker_class' must be one of"),
    ('g-unknown-workload', G, H4, {'workload': 'web'}, "option 'workload' must be one of cpu, io, mixed"),
    ('c-unknown-workload', C, H4, {'workload': 'CPU'}, "option 'workload' must be one of cpu, io, mixed"),
    ('g-unknown-option', G, H4, {'workerz': 4}, "unknown option 'workerz'"),
    ('c-unknown-option', C, H4, {'concurrency': 4}, "unknown option 'concurrency'"),
    ('g-threads-with-sync', G, H4, {'worker_class': 'sync', 'threads': 4}, "option 'threads'=4 needs worker_class 'gthread'"),
    ('g-threads-with-gevent', G, H4, {'workload': 'io', 'threads': 2}, "option 'threads'=2 needs worker_class 'gthread'"),
    ('g-max-below-min', G, H4, {'min_workers': 3, 'max_workers': 2}, r"option 'max_workers' \(2\) must be >= min_workers \(3\)"),
    ('c-max-below-min', C, H4, {'min_concurrency': 3, 'max_concurrency': 2}, r"option 'max_concurrency' \(2\) must be >= min_concurrency"),
    ('c-unknown-pool', C, H4, {'pool': 'solo'}, "option 'pool' must be one of prefork"),
    ('c-child-memory-bool', C, H4, {'child_memory_mb': False}, "option 'child_memory_mb' must be an integer"),
    ('c-child-memory-zero', C, H4, {'child_memory_mb': 0}, "option 'child_memory_mb' must be >= 1"),
    ('c-max-tasks-zero', C, H4, {'max_tasks_per_child': 0}, "option 'max_tasks_per_child' must be >= 1"),
    ('c-prefetch-zero', C, H4, {'prefetch_multiplier': 0}, "option 'prefetch_multiplier' must be >= 1"),
    ('c-reserved-text', C, H4, {'reserved_memory_mb': '1g'}, "option 'reserved_memory_mb' must be an integer"),
    ('g-budget-zero', G, H4, {'budget_mb': 0}, "option 'budget_mb' must be >= 1"),
    ('c-budget-text', C, H4, {'budget_mb': '1g'}, "option 'budget_mb' must be an integer"),
]


@pytest.mark.parametrize('name, facts, options, message', [row[1:] for row in ERRORS], ids=_ids(ERRORS))
def test_errors(name, facts, options, message):
    with pytest.raises(AnsibleFilterError, match=rf'^flaskfleet\.stack\.{name}: .*{message}') as excinfo:
        FILTERS[name](facts, **options)
    assert excinfo.value.__cause__ is not None


@pytest.mark.parametrize('name', [G, C])
def test_positional_argument_rejected(name):
    with pytest.raises(AnsibleFilterError, match=rf'^flaskfleet\.stack\.{name}: takes keyword options only'):
        FILTERS[name](H4, 'io')


@pytest.mark.parametrize('options, max_requests, jitter, nofile', [
    ({'workload': 'cpu'}, 1000, 100, 4096),
    ({'workload': 'mixed'}, 4000, 400, 4096),
    ({'workload': 'mixed', 'threads': 16}, 16000, 1600, 4096),
    ({'workload': 'io'}, 100000, 10000, 4096),
    ({'worker_class': 'gthread', 'threads': 2000}, 2000000, 200000, 8000),
])
def test_gunicorn_recycling_and_open_files_follow_concurrency(options, max_requests, jitter, nofile):
    plan = GUNICORN(H64, **options)
    assert (plan['max_requests'], plan['max_requests_jitter'], plan['nofile_limit']) == (max_requests, jitter, nofile)
