"""The logs as Arrow tables: exposure rows and debunk events (integer codes) turned into the
input contracts' columns, ids built in place and categories as dictionary columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from domain.vocab import ACTIONS, DEBUNK_EVENTS, SURFACES
from offline.io.contracts import EVENT_SCHEMA, EXPOSURE_SCHEMA, TS
from offline.synth.columns import Cols
from offline.synth.experiment import Trial
from offline.synth.ids import debunk_ids, item_ids, rumor_ids, user_ids

_SURFACE_NAMES = pa.array(SURFACES, pa.string())
_ACTION_NAMES = pa.array(ACTIONS, pa.string())
_EVENT_NAMES = pa.array(DEBUNK_EVENTS, pa.string())


def coded(codes: np.ndarray, names: pa.Array) -> pa.Array:
    """A dictionary column over ``names``; stored as plain strings (see LOG_OPTIONS)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), names)


def exposure_table(rows: Cols) -> pa.Table:
    """Exposure rows (integer codes) as the log table: ids, UTC times, surface and action."""
    return pa.Table.from_arrays(
        [
            user_ids(rows["user"]),
            item_ids(rows["item"]),
            pa.array(rows["ts"], type=TS),
            coded(rows["surface"], _SURFACE_NAMES),
            coded(rows["action"], _ACTION_NAMES),
        ],
        names=EXPOSURE_SCHEMA.names,
    )


def event_table(ev: Cols, trial: Trial | None) -> pa.Table:
    """Debunk events (integer codes) as the event table, labelled with the user's arm when the
    world runs an experiment (else experiment and arm are empty)."""
    n = len(ev["ts"])
    if trial is None:
        experiment = arm = pa.StringArray.from_buffers(
            n, pa.py_buffer(np.zeros(n + 1, np.int32)), pa.py_buffer(b"")
        )
    else:
        experiment = coded(np.zeros(n, np.int8), pa.array([trial.experiment.name]))
        arm = coded(trial.arm[ev["user"]], trial.arm_names)
    return pa.Table.from_arrays(
        [
            user_ids(ev["user"]),
            debunk_ids(ev["debunk"]),
            rumor_ids(ev["rumor"]),
            coded(ev["surface"], _SURFACE_NAMES),
            coded(ev["event"], _EVENT_NAMES),
            pa.array(ev["ts"], type=TS),
            experiment,
            arm,
        ],
        names=EVENT_SCHEMA.names,
    )
