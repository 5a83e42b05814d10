# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Size gunicorn and celery worker pools from a host's ansible_facts.

Documentation lives in the sidecar files gunicorn_plan.yml and celery_plan.yml.
Both filters are pure: they read the piped facts and their keyword options and
return a new dict, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

GUNICORN_FQCN = 'flaskfleet.stack.gunicorn_plan'
CELERY_FQCN = 'flaskfleet.stack.celery_plan'

# Resident memory of the gunicorn master / celery parent process, in MB.
MASTER_MB = 50
PARENT_MB = 80

WORKLOADS = ('cpu', 'io', 'mixed')
WORKER_CLASSES = ('sync', 'gthread', 'gevent')
POOLS = ('prefork',)

RESERVE_FRACTION_DIVISOR = 4  # default reserve: 25% of memtotal_mb ...
RESERVE_MIN_MB = 256  # ... but at least this much ...
RESERVE_MAX_MB = 2048  # ... and at most this much.

WORKER_CONNECTIONS = 1000
# Recycling (max_requests) bounds slow leaks. It is scaled with what one
# worker serves at once, so a worker with many threads or greenlets is not
# replaced every few seconds under load (a restart costs every request in
# flight a share of the worker's capacity). gevent: worker_connections is a
# ceiling; a tenth of it is taken as the typical concurrency.
REQUESTS_PER_SLOT = 1000
GEVENT_TYPICAL_SHARE = 10
JITTER_PERCENT = 10
# Open files per worker process: every connection (client and upstream)
# is a descriptor; never below Debian's usual service soft limit x 4.
NOFILE_PER_CONNECTION = 4
NOFILE_MIN = 4096
TIMEOUT = 30
GRACEFUL_TIMEOUT = 30
# nginx upstream keepalive_timeout is 60s: gunicorn must keep idle connections
# open longer so nginx never reuses one that gunicorn just closed.
KEEPALIVE = {'sync': 2, 'gthread': 65, 'gevent': 65}

CLASS_FOR_WORKLOAD = {'cpu': 'sync', 'io': 'gevent', 'mixed': 'gthread'}
CLASS_REASONS = {
    'cpu': "workload 'cpu' -> sync: one request per process, 2 x vCPUs + 1 processes keep every core busy",
    'io': "workload 'io' -> gevent: each process multiplexes many slow connections on greenlets (needs gevent-safe code)",
    'mixed': "workload 'mixed' -> gthread: a few threads per process absorb I/O waits while processes keep CPU work parallel",
}
GTHREAD_THREADS = {'cpu': 4, 'io': 8, 'mixed': 4}

CELERY_PREFETCH = {'cpu': 1, 'io': 4, 'mixed': 4}

# Option specs: name -> ('int', default, minimum) or ('choice', default, choices).
# A default of None for an int option means "unset" (no cap / computed later).
GUNICORN_OPTIONS = {
    'workload': ('choice', 'mixed', WORKLOADS),
    'worker_class': ('choice', None, WORKER_CLASSES),
    'worker_memory_mb': ('int', 150, 1),
    'reserved_memory_mb': ('int', None, 0),
    'min_workers': ('int', 1, 1),
    'max_workers': ('int', None, 1),
    'threads': ('int', None, 1),
}
CELERY_OPTIONS = {
    'workload': ('choice', 'cpu', WORKLOADS),
    'pool': ('choice', 'prefork', POOLS),
    'child_memory_mb': ('int', 200, 1),
    'reserved_memory_mb': ('int', None, 0),
    'min_concurrency': ('int', 1, 1),
    'max_concurrency': ('int', None, 1),
    'max_tasks_per_child': ('int', 1000, 1),
    'prefetch_multiplier': ('int', None, 1),
}

_DIGITS = re.compile(r'[0-9]+')


class _PlanError(ValueError):
    """Bad input; the filter wrapper prefixes the message with its FQCN."""


def _show(value) -> str:
    """Short, type-revealing rendering of a bad value for an error message."""
    if isinstance(value, bool):
        return f'boolean {value}'
    if isinstance(value, str):
        return f'string {str(value)!r}'
    if isinstance(value, (int, float)):
        return f'{type(value).__name__} {value!r}'
    if isinstance(value, Mapping):
        return 'a mapping'
    if value is None:
        return 'null'
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + '...'
    return f'{type(value).__name__} {text}'


def _integral(value):
    """Return value as a plain int if it is an int or an integral float, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# ---------------------------------------------------------------- options


def _int_option(name: str, value, default, minimum: int):
    if value is None:
        return default
    number = _integral(value)
    if number is None:
        raise _PlanError(f"option '{name}' must be an integer, got {_show(value)}")
    if number < minimum:
        raise _PlanError(f"option '{name}' must be >= {minimum}, got {number}")
    return number


def _choice_option(name: str, value, default, choices):
    if value is None:
        return default
    if not isinstance(value, str) or value not in choices:
        raise _PlanError(f"option '{name}' must be one of {', '.join(choices)}; got {_show(value)}")
    return str(value)


def _read_options(args, options: Mapping, spec: Mapping) -> dict:
    """Validate keyword options against spec; return every option with defaults filled in."""
    if args:
        raise _PlanError(f'takes keyword options only ({", ".join(spec)}), got {len(args)} positional argument(s)')
    unknown = sorted(name for name in options if name not in spec)
    if unknown:
        raise _PlanError(f"unknown option '{unknown[0]}'; valid options: {', '.join(spec)}")
    result = {}
    for name, (kind, default, rule) in spec.items():
        value = options.get(name)
        if kind == 'int':
            result[name] = _int_option(name, value, default, rule)
        else:
            result[name] = _choice_option(name, value, default, rule)
    return result


def _check_range(opts: Mapping, low: str, high: str) -> None:
    if opts[high] is not None and opts[high] < opts[low]:
        raise _PlanError(f"option '{high}' ({opts[high]}) must be >= {low} ({opts[low]})")


# ------------------------------------------------------------------ facts


def _fact_int(name: str, value) -> int:
    number = _integral(value)
    if number is None and isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or number < 1:
        raise _PlanError(f"fact '{name}' must be a positive integer, got {_show(value)}")
    return number


def _check_facts(facts) -> None:
    if not isinstance(facts, Mapping):
        raise _PlanError(f'input must be a mapping of host facts (pipe ansible_facts), got {_show(facts)}')


def _read_cpus(facts: Mapping) -> int:
    """vCPUs: processor_vcpus, then processor_nproc, then count * cores * threads_per_core, else 1."""
    for name in ('processor_vcpus', 'processor_nproc'):
        if facts.get(name) is not None:
            return _fact_int(name, facts[name])
    parts = ('processor_count', 'processor_cores', 'processor_threads_per_core')
    if all(facts.get(name) is not None for name in parts):
        cpus = 1
        for name in parts:
            cpus *= _fact_int(name, facts[name])
        return cpus
    return 1


def _read_memory(facts: Mapping) -> int:
    """Total memory in MB: memtotal_mb, then memory_mb.real.total."""
    if facts.get('memtotal_mb') is not None:
        return _fact_int('memtotal_mb', facts['memtotal_mb'])
    total = facts.get('memory_mb')
    for key in ('real', 'total'):
        total = total.get(key) if isinstance(total, Mapping) else None
    if total is not None:
        return _fact_int('memory_mb.real.total', total)
    raise _PlanError("fact 'memtotal_mb' is missing (and so is memory_mb.real.total); gather hardware facts and pipe ansible_facts")


def _reserve(opts: Mapping, memory_mb: int) -> int:
    """reserved_memory_mb as given, else 25% of memory_mb clamped to [256, 2048]."""
    if opts['reserved_memory_mb'] is not None:
        return opts['reserved_memory_mb']
    return max(RESERVE_MIN_MB, min(RESERVE_MAX_MB, memory_mb // RESERVE_FRACTION_DIVISOR))


# ----------------------------------------------------------------- sizing


def _ceil_ratio(value: int, numerator: int, denominator: int) -> int:
    """ceil(value * numerator / denominator) in exact integer arithmetic."""
    return -(-value * numerator // denominator)


def _caps(planned_mb: int, floor_max_mb: int = 0):
    """systemd MemoryHigh / MemoryMax: 1.25x and 1.5x the planned use (MemoryMax at least floor_max_mb)."""
    return _ceil_ratio(planned_mb, 5, 4), max(_ceil_ratio(planned_mb, 3, 2), floor_max_mb)


def _plural(count: int, noun: str) -> str:
    if count == 1:
        return f'{count} {noun}'
    return f'{count} {"children" if noun == "child" else noun + "s"}'


def _size(limits: Mapping) -> dict:
    """Pick the process count from the CPU bound, the memory bound and the min/max options.

    limits holds: cpu_bound, cpu_text, memory_mb, reserved_mb, overhead_mb, unit_mb,
    noun, min_name, minimum, max_name, maximum.
    """
    available = max(0, limits['memory_mb'] - limits['reserved_mb'])
    memory_bound = max(0, (available - limits['overhead_mb']) // limits['unit_mb'])
    cpu_bound = limits['cpu_bound']
    if cpu_bound <= memory_bound:
        count, bound = cpu_bound, 'cpu'
    else:
        count, bound = memory_bound, 'memory'
    if limits['maximum'] is not None and count > limits['maximum']:
        count, bound = limits['maximum'], 'max'
    if count < limits['minimum']:
        count, bound = limits['minimum'], 'min'

    unit = f"{limits['unit_mb']} MB"
    cpu_text = limits['cpu_text']
    mem_text = f"memory ({available} MB after {limits['reserved_mb']} MB reserve) would allow {memory_bound} of {unit}"
    min_text = f"planned {limits['min_name']}={limits['minimum']}"
    if bound == 'cpu':
        why = f'{cpu_text}; {mem_text}'
    elif bound == 'memory':
        why = f"memory bound, {available} MB after {limits['reserved_mb']} MB reserve holds {memory_bound} of {unit}; {cpu_text}"
    elif bound == 'max':
        why = f"capped by {limits['max_name']}={limits['maximum']}; {cpu_text}; {mem_text}"
    elif memory_bound < limits['minimum']:
        why = f"memory left after reserve ({available} MB) holds {_plural(memory_bound, limits['noun'])} of {unit}; {min_text}"
    else:
        why = f'{cpu_text} is below {limits["min_name"]}; {min_text}; {mem_text}'
    return {'count': count, 'bound': bound, 'cpu_bound': cpu_bound, 'memory_bound': memory_bound, 'why': why}


# ---------------------------------------------------------------- filters


def _gunicorn_class(opts: Mapping):
    """Return (worker_class, class_reason, threads) from the validated options."""
    workload = opts['workload']
    worker_class = opts['worker_class']
    if worker_class is None:
        worker_class = CLASS_FOR_WORKLOAD[workload]
        class_reason = CLASS_REASONS[workload]
    else:
        class_reason = f"worker_class '{worker_class}' was given explicitly"

    threads = opts['threads']
    if worker_class == 'gthread':
        return worker_class, class_reason, threads or GTHREAD_THREADS[workload]
    if threads is not None and threads > 1:
        raise _PlanError(
            f"option 'threads'={threads} needs worker_class 'gthread'; {worker_class} workers run one thread each "
            "(gunicorn would silently turn sync into gthread, this filter refuses to)")
    return worker_class, class_reason, 1


def _gunicorn_cpu_bound(worker_class: str, cpus: int):
    """Return (cpu_bound, explanation) for a worker class."""
    if worker_class == 'sync':
        return 2 * cpus + 1, f'CPU bound 2x{cpus}+1={2 * cpus + 1}'
    if worker_class == 'gthread':
        return cpus + 1, f'CPU bound {cpus}+1={cpus + 1}'
    return cpus, f'CPU bound {cpus} (one per vCPU)'


def _gunicorn(facts, args, options) -> dict:
    _check_facts(facts)
    opts = _read_options(args, options, GUNICORN_OPTIONS)
    _check_range(opts, 'min_workers', 'max_workers')
    worker_class, class_reason, threads = _gunicorn_class(opts)
    cpus = _read_cpus(facts)
    memory = _read_memory(facts)
    cpu_bound, cpu_text = _gunicorn_cpu_bound(worker_class, cpus)

    reserved = _reserve(opts, memory)
    worker_mb = opts['worker_memory_mb']
    sized = _size({
        'cpu_bound': cpu_bound, 'cpu_text': cpu_text, 'memory_mb': memory, 'reserved_mb': reserved,
        'overhead_mb': MASTER_MB, 'unit_mb': worker_mb, 'noun': 'worker',
        'min_name': 'min_workers', 'minimum': opts['min_workers'], 'max_name': 'max_workers', 'maximum': opts['max_workers'],
    })
    workers = sized['count']
    planned = MASTER_MB + workers * worker_mb
    memory_high, memory_max = _caps(planned)
    slots = {'sync': 1, 'gthread': threads, 'gevent': WORKER_CONNECTIONS // GEVENT_TYPICAL_SHARE}[worker_class]
    max_requests = REQUESTS_PER_SLOT * slots
    connections = {'sync': 1, 'gthread': threads, 'gevent': WORKER_CONNECTIONS}[worker_class]
    head = _plural(workers, f'{worker_class} worker') + (f' x {threads} threads' if worker_class == 'gthread' else '')
    return {
        'workers': workers,
        'threads': threads,
        'worker_class': worker_class,
        'class_reason': class_reason,
        'workload': opts['workload'],
        'worker_connections': WORKER_CONNECTIONS,
        'max_requests': max_requests,
        'max_requests_jitter': max_requests * JITTER_PERCENT // 100,
        'nofile_limit': max(NOFILE_MIN, NOFILE_PER_CONNECTION * connections),
        'timeout': TIMEOUT,
        'graceful_timeout': GRACEFUL_TIMEOUT,
        'keepalive': KEEPALIVE[worker_class],
        'cpus': cpus,
        'memory_mb': memory,
        'reserved_memory_mb': reserved,
        'worker_memory_mb': worker_mb,
        'cpu_bound': sized['cpu_bound'],
        'memory_bound': sized['memory_bound'],
        'planned_memory_mb': planned,
        'memory_high_mb': memory_high,
        'memory_max_mb': memory_max,
        'bound': sized['bound'],
        'reason': f"{head}: {sized['why']}",
    }


def _celery(facts, args, options) -> dict:
    _check_facts(facts)
    opts = _read_options(args, options, CELERY_OPTIONS)
    _check_range(opts, 'min_concurrency', 'max_concurrency')
    cpus = _read_cpus(facts)
    memory = _read_memory(facts)

    workload = opts['workload']
    if workload == 'cpu':
        cpu_bound, cpu_text = cpus, f'CPU bound {cpus} (one per vCPU)'
    else:
        cpu_bound, cpu_text = 2 * cpus, f'CPU bound 2x{cpus}={2 * cpus}'

    reserved = _reserve(opts, memory)
    child_mb = opts['child_memory_mb']
    sized = _size({
        'cpu_bound': cpu_bound, 'cpu_text': cpu_text, 'memory_mb': memory, 'reserved_mb': reserved,
        'overhead_mb': PARENT_MB, 'unit_mb': child_mb, 'noun': 'child',
        'min_name': 'min_concurrency', 'minimum': opts['min_concurrency'],
        'max_name': 'max_concurrency', 'maximum': opts['max_concurrency'],
    })
    concurrency = sized['count']
    # Celery replaces a child once a finished task leaves it above this (1.5x the expected RSS).
    per_child_kb = child_mb * 1024 * 3 // 2
    planned = PARENT_MB + concurrency * child_mb
    # MemoryMax leaves room for every child to reach its per-child limit plus one
    # child's worth for a replacement starting while the old one exits.
    children_at_limit = PARENT_MB + concurrency * _ceil_ratio(child_mb, 3, 2) + child_mb
    memory_high, memory_max = _caps(planned, children_at_limit)
    prefetch = opts['prefetch_multiplier'] or CELERY_PREFETCH[workload]
    return {
        'concurrency': concurrency,
        'pool': opts['pool'],
        'workload': workload,
        'max_tasks_per_child': opts['max_tasks_per_child'],
        'max_memory_per_child_kb': per_child_kb,
        'prefetch_multiplier': prefetch,
        'cpus': cpus,
        'memory_mb': memory,
        'reserved_memory_mb': reserved,
        'child_memory_mb': child_mb,
        'cpu_bound': sized['cpu_bound'],
        'memory_bound': sized['memory_bound'],
        'planned_memory_mb': planned,
        'memory_high_mb': memory_high,
        'memory_max_mb': memory_max,
        'bound': sized['bound'],
        'reason': f"concurrency {concurrency} ({opts['pool']}, {workload}): {sized['why']}",
    }


def gunicorn_plan(facts, *args, **options):
    """Plan gunicorn workers, threads and memory caps for the host described by facts."""
    try:
        return _gunicorn(facts, args, options)
    except _PlanError as e:
        raise AnsibleFilterError(f'{GUNICORN_FQCN}: {e}') from e


def celery_plan(facts, *args, **options):
    """Plan celery prefork concurrency and memory caps for the host described by facts."""
    try:
        return _celery(facts, args, options)
    except _PlanError as e:
        raise AnsibleFilterError(f'{CELERY_FQCN}: {e}') from e


class FilterModule:
    """flaskfleet.stack worker-pool planning filters."""

    def filters(self):
        """Map filter names to functions."""
        return {
            'gunicorn_plan': gunicorn_plan,
            'celery_plan': celery_plan,
        }
