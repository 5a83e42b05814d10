# Copyright (c) flaskfleet.stack contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Size gunicorn and celery worker pools from a host's ansible_facts, and divide
a host's memory between the services it runs.

Documentation lives in the sidecar files gunicorn_plan.yml, celery_plan.yml and
memory_budget.yml. The filters are pure: they read the piped facts and their
options and return a new dict, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction

from ansible.errors import AnsibleFilterError

GUNICORN_FQCN = 'flaskfleet.stack.gunicorn_plan'
CELERY_FQCN = 'flaskfleet.stack.celery_plan'
BUDGET_FQCN = 'flaskfleet.stack.memory_budget'

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
    'budget_mb': ('int', None, 1),
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
    'budget_mb': ('int', None, 1),
}

# memory_budget: the kinds of service and the keys each one takes.
SERVICE_KEYS = {
    'gunicorn': ('name', 'kind', 'options'),
    'celery': ('name', 'kind', 'options'),
    'share': ('name', 'kind', 'share', 'min_mb', 'why'),
    'fixed': ('name', 'kind', 'planned_mb', 'why'),
}
# Plan options the budget sets itself: one reserve for the host, a budget per service.
BUDGET_SET_OPTIONS = ('reserved_memory_mb', 'budget_mb')
BUDGET_OPTIONS = ('services', 'reserved_memory_mb', 'commit_limit_percent')
COMMIT_LIMIT_PERCENT = 90

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

    limits holds: cpu_bound, cpu_text, memory_mb, reserved_mb, budget_mb, overhead_mb, unit_mb,
    noun, min_name, minimum, max_name, maximum. A budget_mb (not None) replaces the
    host's memory less the reserve as the memory the pool may plan within.
    """
    budget = limits['budget_mb']
    if budget is None:
        available = max(0, limits['memory_mb'] - limits['reserved_mb'])
        space = f"memory ({available} MB after {limits['reserved_mb']} MB reserve)"
        held = f"{available} MB after {limits['reserved_mb']} MB reserve"
        left = f'memory left after reserve ({available} MB)'
    else:
        available = budget
        space = left = f'the memory budget ({budget} MB)'
        held = f'the memory budget of {budget} MB'
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
    mem_text = f'{space} would allow {memory_bound} of {unit}'
    min_text = f"planned {limits['min_name']}={limits['minimum']}"
    if bound == 'cpu':
        why = f'{cpu_text}; {mem_text}'
    elif bound == 'memory':
        why = f'memory bound, {held} holds {memory_bound} of {unit}; {cpu_text}'
    elif bound == 'max':
        why = f"capped by {limits['max_name']}={limits['maximum']}; {cpu_text}; {mem_text}"
    elif memory_bound < limits['minimum']:
        why = f"{left} holds {_plural(memory_bound, limits['noun'])} of {unit}; {min_text}"
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
        'budget_mb': opts['budget_mb'], 'overhead_mb': MASTER_MB, 'unit_mb': worker_mb, 'noun': 'worker',
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
        'budget_mb': opts['budget_mb'],
        'worker_memory_mb': worker_mb,
        'cpu_bound': sized['cpu_bound'],
        'memory_bound': sized['memory_bound'],
        'planned_memory_mb': planned,
        'memory_high_mb': memory_high,
        'memory_max_mb': memory_max,
        'bound': sized['bound'],
        'reason': f"{head}: {sized['why']}",
    }


def _celery_cpu_bound(workload: str, cpus: int):
    """Return (cpu_bound, explanation) for a celery workload."""
    if workload == 'cpu':
        return cpus, f'CPU bound {cpus} (one per vCPU)'
    return 2 * cpus, f'CPU bound 2x{cpus}={2 * cpus}'


def _celery(facts, args, options) -> dict:
    _check_facts(facts)
    opts = _read_options(args, options, CELERY_OPTIONS)
    _check_range(opts, 'min_concurrency', 'max_concurrency')
    cpus = _read_cpus(facts)
    memory = _read_memory(facts)

    workload = opts['workload']
    cpu_bound, cpu_text = _celery_cpu_bound(workload, cpus)

    reserved = _reserve(opts, memory)
    child_mb = opts['child_memory_mb']
    sized = _size({
        'cpu_bound': cpu_bound, 'cpu_text': cpu_text, 'memory_mb': memory, 'reserved_mb': reserved,
        'budget_mb': opts['budget_mb'], 'overhead_mb': PARENT_MB, 'unit_mb': child_mb, 'noun': 'child',
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
        'budget_mb': opts['budget_mb'],
        'child_memory_mb': child_mb,
        'cpu_bound': sized['cpu_bound'],
        'memory_bound': sized['memory_bound'],
        'planned_memory_mb': planned,
        'memory_high_mb': memory_high,
        'memory_max_mb': memory_max,
        'bound': sized['bound'],
        'reason': f"concurrency {concurrency} ({opts['pool']}, {workload}): {sized['why']}",
    }


# ---------------------------------------------------------- memory budget


def _budget_int(entry: Mapping, key: str, default):
    """An integer >= 0 from a service entry; default None means the key is required."""
    value = entry.get(key)
    if value is None:
        if default is None:
            raise _PlanError(f"key '{key}' is missing")
        return default
    number = _integral(value)
    if number is None:
        raise _PlanError(f"key '{key}' must be an integer, got {_show(value)}")
    if number < 0:
        raise _PlanError(f"key '{key}' must be >= 0, got {number}")
    return number


def _budget_note(entry: Mapping) -> str:
    """The optional one-line 'why' of a share or fixed service, as ', why' (or '')."""
    why = entry.get('why')
    if why is None:
        return ''
    if not isinstance(why, str) or '\n' in why:
        raise _PlanError(f"key 'why' must be one line of text, got {_show(why)}")
    return f', {why}' if why.strip() else ''


def _service_options(entry: Mapping, spec: Mapping, plan_name: str) -> dict:
    options = entry.get('options')
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        raise _PlanError(f"key 'options' must be a mapping of {plan_name} options, got {_show(options)}")
    for name in BUDGET_SET_OPTIONS:
        if options.get(name) is not None:
            raise _PlanError(
                f"option '{name}' cannot be set per service: the budget takes one reserved_memory_mb for the host "
                "and gives each service its budget_mb")
    return _read_options((), options, spec)


def _pool(name: str, limits: Mapping, opts: Mapping) -> dict:
    """A gunicorn or celery service: its demand at the CPU bound, clamped by its max and min options."""
    min_name, max_name = limits['min_name'], limits['max_name']
    _check_range(opts, min_name, max_name)
    count, text = limits['cpu_bound'], limits['cpu_text']
    if opts[max_name] is not None and count > opts[max_name]:
        count, text = opts[max_name], f'capped by {max_name}={opts[max_name]}, {text}'
    if count < opts[min_name]:
        count, text = opts[min_name], f'raised to {min_name}={opts[min_name]}, {text}'
    unit = opts[limits['unit_name']]
    demand = limits['overhead_mb'] + count * unit
    return dict(limits, name=name, demand=demand, planned=demand, floor=limits['overhead_mb'] + opts[min_name] * unit,
                count=count, demand_count=count, min_count=opts[min_name], unit=unit, text=text)


def _budget_gunicorn(name: str, entry: Mapping, cpus: int) -> dict:
    opts = _service_options(entry, GUNICORN_OPTIONS, 'gunicorn_plan')
    worker_class = _gunicorn_class(opts)[0]
    cpu_bound, cpu_text = _gunicorn_cpu_bound(worker_class, cpus)
    return _pool(name, {
        'kind': 'gunicorn', 'cpu_bound': cpu_bound, 'cpu_text': cpu_text, 'overhead_mb': MASTER_MB, 'overhead': 'master',
        'unit_name': 'worker_memory_mb', 'head': f'{worker_class} worker', 'noun': 'worker',
        'min_name': 'min_workers', 'max_name': 'max_workers',
    }, opts)


def _budget_celery(name: str, entry: Mapping, cpus: int) -> dict:
    opts = _service_options(entry, CELERY_OPTIONS, 'celery_plan')
    cpu_bound, cpu_text = _celery_cpu_bound(opts['workload'], cpus)
    return _pool(name, {
        'kind': 'celery', 'cpu_bound': cpu_bound, 'cpu_text': cpu_text, 'overhead_mb': PARENT_MB, 'overhead': 'parent',
        'unit_name': 'child_memory_mb', 'head': 'child', 'noun': 'child',
        'min_name': 'min_concurrency', 'max_name': 'max_concurrency',
    }, opts)


def _budget_share(name: str, entry: Mapping, memory: int) -> dict:
    share = entry.get('share')
    if share is None:
        raise _PlanError("key 'share' is missing")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1:
        raise _PlanError(f"key 'share' must be a fraction of the host's memory, above 0 and at most 1, got {_show(share)}")
    min_mb = _budget_int(entry, 'min_mb', 0)
    # The share as written (0.29, not the nearest binary float), so 0.29 of 100 MB is 29 MB.
    raw = int(memory * Fraction(str(share)))
    percent = f'{float(Fraction(str(share)) * 100):g} %'
    if raw >= min_mb:
        text = f'{percent} of {memory} MB{_budget_note(entry)}'
    else:
        text = f'min_mb, {percent} of {memory} MB is {raw} MB{_budget_note(entry)}'
    demand = max(raw, min_mb)
    return {'kind': 'share', 'name': name, 'demand': demand, 'planned': demand, 'floor': min_mb, 'text': text}


def _budget_fixed(name: str, entry: Mapping) -> dict:
    planned = _budget_int(entry, 'planned_mb', None)
    return {'kind': 'fixed', 'name': name, 'demand': planned, 'planned': planned, 'floor': planned,
            'text': f'fixed{_budget_note(entry)}'}


def _budget_services(services, cpus: int, memory: int) -> list:
    """Validate the services list; return one working record per service, in order."""
    if isinstance(services, (str, bytes, Mapping)) or not isinstance(services, Sequence):
        raise _PlanError(f"option 'services' must be a list of mappings with name and kind, got {_show(services)}")
    seen = {}
    records = []
    for index, entry in enumerate(services):
        where = f'services[{index}]'
        if not isinstance(entry, Mapping):
            raise _PlanError(f'{where} must be a mapping with name and kind, got {_show(entry)}')
        name = entry.get('name')
        if name is None:
            raise _PlanError(f"{where}: key 'name' is missing")
        if not isinstance(name, str) or not name.strip():
            raise _PlanError(f"{where}: key 'name' must be a non-empty string, got {_show(name)}")
        if name in seen:
            raise _PlanError(f"{where}: name '{name}' is already used by services[{seen[name]}]")
        seen[name] = index
        where = f"{where} ('{name}')"
        kind = entry.get('kind')
        if not isinstance(kind, str) or kind not in SERVICE_KEYS:
            raise _PlanError(f"{where}: key 'kind' must be one of {', '.join(SERVICE_KEYS)}; got {_show(kind)}")
        unknown = sorted(str(key) for key in entry if key not in SERVICE_KEYS[kind])
        if unknown:
            raise _PlanError(f"{where}: unknown key '{unknown[0]}' for kind {kind}; valid keys: {', '.join(SERVICE_KEYS[kind])}")
        try:
            if kind == 'gunicorn':
                records.append(_budget_gunicorn(name, entry, cpus))
            elif kind == 'celery':
                records.append(_budget_celery(name, entry, cpus))
            elif kind == 'share':
                records.append(_budget_share(name, entry, memory))
            else:
                records.append(_budget_fixed(name, entry))
        except _PlanError as e:
            raise _PlanError(f'{where}: {e}') from e
    return records


def _spread(amount: int, rooms: list, names: list) -> list:
    """Split amount MB over rooms in proportion (largest remainder, ties by name); never more than a room holds."""
    room = sum(rooms)
    if amount >= room:
        return list(rooms)
    parts = [amount * size // room for size in rooms]
    order = sorted(range(len(rooms)), key=lambda i: (-(amount * rooms[i] % room), names[i]))
    for i in order[:amount - sum(parts)]:
        parts[i] += 1
    return parts


def _divide(records: list, available: int) -> None:
    """Shrink the records' planned MB until they fit in available, or every one is at its minimum."""
    def total():
        return sum(record['planned'] for record in records)

    if total() <= available:
        return
    shares = [record for record in records if record['kind'] == 'share']
    names = [record['name'] for record in shares]
    # 1. the shares, proportionally toward their min_mb
    cuts = _spread(total() - available, [record['demand'] - record['floor'] for record in shares], names)
    for record, cut in zip(shares, cuts):
        record['planned'] -= cut
    # 2. one process at a time from the pool with the most above its minimum (then the larger unit, then by name)
    pools = [record for record in records if record['kind'] in ('gunicorn', 'celery')]
    while total() > available:
        above = [record for record in pools if record['count'] > record['min_count']]
        if not above:
            return
        record = min(above, key=lambda r: (r['min_count'] - r['count'], -r['unit'], r['name']))
        record['count'] -= 1
        record['planned'] -= record['unit']
    # 3. what the last process removed left over goes back to the shares it was taken from
    gains = _spread(available - total(), [record['demand'] - record['planned'] for record in shares], names)
    for record, gain in zip(shares, gains):
        record['planned'] += gain


def _budget_why(record: Mapping, cause: str) -> str:
    """One line: what the service got and why; cause ('' to leave it out) says why a shrunk one was shrunk."""
    planned, shrunk = record['planned'], record['planned'] < record['demand']
    cause = f': {cause}' if cause else ''
    if record['kind'] in ('gunicorn', 'celery'):
        base = (f"{_plural(record['count'], record['head'])} x {record['unit']} MB + {record['overhead_mb']} MB "
                f"{record['overhead']} = {planned} MB")
        if not shrunk:
            return f"{base} ({record['text']})"
        floor = f" (at {record['min_name']}={record['min_count']})" if record['count'] == record['min_count'] else ''
        return f"{base}, shrunk from {record['demand_count']} to {_plural(record['count'], record['noun'])}{floor}{cause}"
    if not shrunk:
        return f"{planned} MB ({record['text']})"
    floor = ', at min_mb' if planned == record['floor'] else ''
    return f"{planned} MB, shrunk from {record['demand']} MB{floor} ({record['text']}){cause}"


def _budget(facts, args, options) -> dict:
    _check_facts(facts)
    if len(args) > 1:
        raise _PlanError(f'takes the services list and keyword options ({", ".join(BUDGET_OPTIONS[1:])}), got {len(args)} positional arguments')
    if args:
        if 'services' in options:
            raise _PlanError("option 'services' was given twice (positional and keyword)")
        options = dict(options, services=args[0])
    unknown = sorted(name for name in options if name not in BUDGET_OPTIONS)
    if unknown:
        raise _PlanError(f"unknown option '{unknown[0]}'; valid options: {', '.join(BUDGET_OPTIONS)}")
    if options.get('services') is None:
        raise _PlanError("option 'services' is missing: pass the list of the host's services")
    limit = options.get('commit_limit_percent')
    if limit is None:
        limit = COMMIT_LIMIT_PERCENT
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit <= 100:
        raise _PlanError(f"option 'commit_limit_percent' must be a number above 0 and at most 100, got {_show(limit)}")
    cpus = _read_cpus(facts)
    memory = _read_memory(facts)
    reserved = _reserve({'reserved_memory_mb': _int_option('reserved_memory_mb', options.get('reserved_memory_mb'), None, 0)}, memory)
    records = _budget_services(options['services'], cpus, memory)

    # The services are divided within the host's memory less the reserve, and
    # never beyond the commit limit (as written: 90 of 1000 MB is 900 MB).
    after_reserve = max(0, memory - reserved)
    limit_mb = int(memory * Fraction(str(limit)) / 100)
    available = min(after_reserve, limit_mb)
    demanded = sum(record['demand'] for record in records)
    _divide(records, available)
    planned = sum(record['planned'] for record in records)
    within = planned * 100 <= memory * limit
    commit = round(planned * 100 / memory, 1)

    if available == after_reserve:
        room = f"the host's {memory} MB less {reserved} MB reserve ({available} MB)"
    else:
        room = f"the commit limit, {limit:g} % of the host's {memory} MB ({available} MB)"
    cause = f"{room} could not hold every service's demand ({demanded} MB)"
    services = {}
    lines = []
    for record in records:
        lines.append(f"{record['name']}: {_budget_why(record, '')}")
        pool = record['kind'] in ('gunicorn', 'celery')
        services[record['name']] = {
            'kind': record['kind'],
            'demand_mb': record['demand'],
            'planned_mb': record['planned'],
            'memory_mb': record['planned'],
            'count': record['count'] if pool else None,
            'shrunk': record['planned'] < record['demand'],
            'why': _budget_why(record, cause),
        }
    totals = (f"planned {planned} MB of {memory} MB ({commit:g} %, limit {limit:g} %): "
              f"{'within' if within else 'over'} the limit; {available} MB available "
              + (f"after the {reserved} MB reserve" if available == after_reserve else f"(the commit limit, {limit:g} %)"))
    if demanded > available:
        totals += f', demanded {demanded} MB'
    if planned > available:
        totals += f'; every service is at its minimum and they still need {planned - available} MB more'
    return {
        'memory_mb': memory,
        'cpus': cpus,
        'reserved_memory_mb': reserved,
        'available_mb': available,
        'planned_mb': planned,
        'commit_percent': commit,
        'commit_limit_percent': limit,
        'within_limit': within,
        'services': services,
        'reason': '; '.join(lines + [totals]),
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


def memory_budget(facts, *args, **options):
    """Divide the host's memory between the services it runs by their planned use."""
    try:
        return _budget(facts, args, options)
    except _PlanError as e:
        raise AnsibleFilterError(f'{BUDGET_FQCN}: {e}') from e


class FilterModule:
    """flaskfleet.stack worker-pool and memory planning filters."""

    def filters(self):
        """Map filter names to functions."""
        return {
            'gunicorn_plan': gunicorn_plan,
            'celery_plan': celery_plan,
            'memory_budget': memory_budget,
        }
