/* The fused feed pass of ranking/fused.py in C: one user's exposures -> the selected cards.
 *
 * select(exposures, table, now, weight, limit, impression, click, served, repush,
 *        dismissed, claims, rules_recency, priority_weight, half_life)
 *
 * Pure: it reads the Python objects it is given (ExposureState tuples, the RankTable's
 * RumorRow tuples, the delivery dicts) and returns, for the selected candidates in feed
 * order, (exposure index, debunk, score, affinity or None, scaled affinity or None,
 * strength, recency, tag score, update). The arithmetic is the Python reference's, term for
 * term (compiled with -ffp-contract=off, libm's pow and exp), so the scores are the same to the
 * bit; tests/test_fused_ranking.py compares it with ranking.fused's Python pass and with
 * ranking.pipeline.rank_feed on seeded worlds.
 *
 * It returns None (the caller then runs the Python pass) when a kept candidate on the model
 * path has no usable stored logits (they need a matrix product), or a score is not a number.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>

/* RumorRow field positions (ranking/fused.py). */
enum { R_RUMOR, R_OPTIONS, R_PRIORITY, R_CLUSTER, R_LOGITS_OK, R_ID, R_SEVERITY, R_REVISED,
       R_OPTION_IDS, R_FIELDS };
/* ExposureState field positions (domain/records.py). */
enum { E_RUMOR, E_EXPOSURES, E_FIRST, E_LAST, E_ACTION, E_MASK, E_LOGITS, E_TAG, E_FIELDS };

typedef struct {
    Py_ssize_t idx;
    PyObject *debunk; /* borrowed from the row's options */
    PyObject *cluster, *rid; /* borrowed from the row */
    long long last_ts, severity;
    double aff, strength, recency, tag, rules, score, scaled;
    int has_aff, update;
} Cand;

static int cmp_cand(const void *pa, const void *pb, void *unused) {
    const Cand *a = (const Cand *)pa, *b = (const Cand *)pb;
    (void)unused;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    if (a->last_ts != b->last_ts) return a->last_ts > b->last_ts ? -1 : 1;
    if (a->severity != b->severity) return a->severity > b->severity ? -1 : 1;
    int c = PyUnicode_Compare(a->cluster, b->cluster);
    if (c != 0) return c < 0 ? -1 : 1;
    c = PyUnicode_Compare(a->rid, b->rid);
    if (c != 0) return c < 0 ? -1 : 1;
    return a->idx < b->idx ? -1 : (a->idx > b->idx);
}

/* Whether ``key`` is in ``dict`` (a NULL or None dict holds nothing); -1 on error. */
static int in_dict(PyObject *dict, PyObject *key) {
    if (dict == NULL || dict == Py_None) return 0;
    return PyDict_Contains(dict, key);
}

/* dict.get(key, 0) as a C integer; -1 with an error set when it is not an int. */
static int get_time(PyObject *dict, PyObject *key, long long *out) {
    *out = 0;
    if (dict == NULL || dict == Py_None) return 0;
    PyObject *v = PyDict_GetItemWithError(dict, key);
    if (v == NULL) return PyErr_Occurred() ? -1 : 0;
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static double sigmoid(double x) {
    return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}

/* The row of ``rid`` (borrowed), filled by the table's __missing__ on a first look-up. */
static PyObject *table_row(PyObject *table, PyObject *rid) {
    PyObject *row = PyDict_GetItemWithError(table, rid);
    if (row != NULL || PyErr_Occurred()) return row;
    row = PyObject_GetItem(table, rid); /* RankTable.__missing__ stores it */
    if (row == NULL) return NULL;
    Py_DECREF(row); /* the table holds it */
    return row;
}

/* Pick the debunk of one candidate; 1: picked or none to pick, 0: needs the Python pass. */
static int pick(Cand *c, PyObject *e, PyObject *row, int model, int seen_any, PyObject *impr,
                PyObject *click) {
    PyObject *options = PyTuple_GET_ITEM(row, R_OPTIONS);
    PyObject *ids = PyTuple_GET_ITEM(row, R_OPTION_IDS);
    Py_ssize_t n = PyTuple_GET_SIZE(ids);
    c->debunk = NULL;
    c->has_aff = 0;
    if (!model) {
        for (Py_ssize_t j = 0; j < n; j++) {
            PyObject *id = PyTuple_GET_ITEM(ids, j);
            int seen = in_dict(impr, id);
            if (seen == 0) seen = in_dict(click, id);
            if (seen < 0) return -1;
            if (!seen) {
                c->debunk = PySequence_Fast_GET_ITEM(options, j);
                break;
            }
        }
        return 1;
    }
    PyObject *stored = PyTuple_GET_ITEM(e, E_LOGITS);
    if (!PyTuple_Check(stored) || PyTuple_GET_SIZE(stored) == 0 || PyTuple_GET_SIZE(stored) != n
        || PyTuple_GET_ITEM(row, R_LOGITS_OK) != Py_True)
        return 0;
    Py_ssize_t best = -1;
    double best_logit = -INFINITY;
    if (!seen_any && n == 1) {
        best = 0;
        best_logit = PyFloat_AsDouble(PyTuple_GET_ITEM(stored, 0));
        if (best_logit == -1.0 && PyErr_Occurred()) return -1;
    } else {
        for (Py_ssize_t j = 0; j < n; j++) {
            if (seen_any) {
                PyObject *id = PyTuple_GET_ITEM(ids, j);
                int seen = in_dict(impr, id);
                if (seen == 0) seen = in_dict(click, id);
                if (seen < 0) return -1;
                if (seen) continue;
            }
            double logit = PyFloat_AsDouble(PyTuple_GET_ITEM(stored, j));
            if (logit == -1.0 && PyErr_Occurred()) return -1;
            if (best < 0) best = j;
            if (logit > best_logit) {
                best = j;
                best_logit = logit;
            }
        }
    }
    if (best >= 0) {
        c->debunk = PySequence_Fast_GET_ITEM(options, best);
        c->aff = isfinite(best_logit) ? sigmoid(best_logit) : 0.0;
        c->has_aff = 1;
    }
    return 1;
}

/* filters.repush_revised for one candidate; -1 on error. */
static int repush(Cand *c, PyObject *row, PyObject *served, PyObject *impr, PyObject *click) {
    long long revised = PyLong_AsLongLong(PyTuple_GET_ITEM(row, R_REVISED));
    if (revised == -1 && PyErr_Occurred()) return -1;
    if (!revised) return 0;
    PyObject *ids = PyTuple_GET_ITEM(row, R_OPTION_IDS);
    long long met = 0;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(ids); j++) {
        PyObject *id = PyTuple_GET_ITEM(ids, j);
        long long s, i, k;
        if (get_time(served, id, &s) || get_time(impr, id, &i) || get_time(click, id, &k))
            return -1;
        long long m = s > i ? s : i;
        m = m > k ? m : k;
        if (m > met) met = m;
    }
    if (0 < met && met < revised) {
        c->update = 1;
        if (c->debunk == NULL) c->debunk = PySequence_Fast_GET_ITEM(PyTuple_GET_ITEM(row, R_OPTIONS), 0);
    }
    return 0;
}

static PyObject *result(Cand *cands, Py_ssize_t kept, Py_ssize_t limit, int model) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < kept; i++) {
        Cand *c = &cands[i];
        int dup = 0;
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(out) && !dup; j++) {
            /* the cluster of an earlier selected candidate: element 9 of its tuple */
            PyObject *prev = PyTuple_GET_ITEM(PyList_GET_ITEM(out, j), 9);
            dup = PyUnicode_Compare(prev, c->cluster) == 0;
        }
        if (dup) continue;
        PyObject *aff = c->has_aff ? PyFloat_FromDouble(c->aff) : Py_NewRef(Py_None);
        PyObject *scaled = model ? PyFloat_FromDouble(c->scaled) : Py_NewRef(Py_None);
        PyObject *t = Py_BuildValue("(nOdNNdddOO)", c->idx, c->debunk, c->score, aff, scaled,
                                    c->strength, c->recency, c->tag,
                                    c->update ? Py_True : Py_False, c->cluster);
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(t);
        if (PyList_GET_SIZE(out) == limit) break;
    }
    return out;
}

static PyObject *fast_select(PyObject *self, PyObject *args) {
    PyObject *exposures, *table, *weight_obj, *impr, *click, *served, *dismissed, *claims;
    double now, rules_recency, priority_weight, half_life;
    Py_ssize_t limit;
    int do_repush;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!O!dOnOOOpOOddd", &PyList_Type, &exposures, &PyDict_Type,
                          &table, &now, &weight_obj, &limit, &impr, &click, &served,
                          &do_repush, &dismissed, &claims, &rules_recency, &priority_weight,
                          &half_life))
        return NULL;
    int model = weight_obj != Py_None;
    double weight = model ? PyFloat_AsDouble(weight_obj) : 0.0;
    if (weight == -1.0 && PyErr_Occurred()) return NULL;
    int seen_any = (impr != Py_None && PyDict_GET_SIZE(impr) > 0)
                   || (click != Py_None && PyDict_GET_SIZE(click) > 0);
    int check_dismissed = dismissed != Py_None && PyDict_GET_SIZE(dismissed) > 0;
    Py_ssize_t n = PyList_GET_SIZE(exposures);
    Cand *cands = PyMem_Malloc((n ? n : 1) * sizeof(Cand));
    if (cands == NULL) return PyErr_NoMemory();
    Py_ssize_t kept = 0;
    PyObject *ret = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyList_GET_ITEM(exposures, i);
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) < E_FIELDS) {
            PyErr_SetString(PyExc_TypeError, "exposures must be ExposureState tuples");
            goto done;
        }
        PyObject *rid = PyTuple_GET_ITEM(e, E_RUMOR);
        PyObject *row = table_row(table, rid);
        if (row == NULL) goto done;
        if (row == Py_None) continue;
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) < R_FIELDS) {
            PyErr_SetString(PyExc_TypeError, "table rows must be RumorRow tuples");
            goto done;
        }
        PyObject *options = PyTuple_GET_ITEM(row, R_OPTIONS);
        if (!(PyList_Check(options) || PyTuple_Check(options))
            || PySequence_Fast_GET_SIZE(options) != PyTuple_GET_SIZE(PyTuple_GET_ITEM(row, R_OPTION_IDS))) {
            ret = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *cluster = PyTuple_GET_ITEM(row, R_CLUSTER);
        if (check_dismissed) {
            int out = PyDict_Contains(dismissed, rid);
            if (out == 0) out = PySet_Contains(claims, cluster);
            if (out < 0) goto done;
            if (out) continue;
        }
        Cand *c = &cands[kept];
        c->idx = i;
        c->update = 0;
        int picked = pick(c, e, row, model, seen_any, impr, click);
        if (picked < 0) goto done;
        if (picked == 0) {
            ret = Py_NewRef(Py_None);
            goto done;
        }
        if (do_repush && repush(c, row, served, impr, click) < 0) goto done;
        if (c->debunk == NULL) continue;
        c->cluster = cluster;
        c->rid = PyTuple_GET_ITEM(row, R_ID);
        c->severity = PyLong_AsLongLong(PyTuple_GET_ITEM(row, R_SEVERITY));
        c->last_ts = PyLong_AsLongLong(PyTuple_GET_ITEM(e, E_LAST));
        long long action = PyLong_AsLongLong(PyTuple_GET_ITEM(e, E_ACTION));
        double tag = PyFloat_AsDouble(PyTuple_GET_ITEM(e, E_TAG));
        double priority = PyFloat_AsDouble(PyTuple_GET_ITEM(row, R_PRIORITY));
        if (PyErr_Occurred()) goto done;
        double age = now - (double)c->last_ts;
        age = age > 0.0 ? age : 0.0;
        c->strength = (double)action;
        c->recency = pow(0.5, age / half_life);
        double m = 0.0 > tag ? 0.0 : tag;
        c->tag = 1.0 < m ? 1.0 : m;
        c->rules = rules_recency * c->recency + priority_weight * priority;
        kept++;
    }
    if (model && kept) {
        double low = INFINITY, high = -INFINITY;
        for (Py_ssize_t i = 0; i < kept; i++) {
            double a = cands[i].has_aff ? cands[i].aff : 0.0;
            if (a < low) low = a;
            if (a > high) high = a;
        }
        double span = high - low;
        for (Py_ssize_t i = 0; i < kept; i++) {
            Cand *c = &cands[i];
            double a = c->has_aff ? c->aff : 0.0;
            c->scaled = span > 0 ? (a - low) / span : 1.0;
            c->score = c->tag * (c->strength + (1 - weight) * c->rules + weight * c->scaled);
        }
    } else {
        for (Py_ssize_t i = 0; i < kept; i++)
            cands[i].score = cands[i].tag * (cands[i].strength + cands[i].rules);
    }
    for (Py_ssize_t i = 0; i < kept; i++) {
        if (isnan(cands[i].score)) {
            ret = Py_NewRef(Py_None);
            goto done;
        }
    }
    qsort_r(cands, kept, sizeof(Cand), cmp_cand, NULL);
    if (PyErr_Occurred()) goto done;
    ret = result(cands, kept, limit, model);
done:
    PyMem_Free(cands);
    return ret;
}

static PyMethodDef methods[] = {
    {"select", fast_select, METH_VARARGS,
     "One user's selected feed candidates (see ranking/fused.py), or None: run the Python pass."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastrank",
                                    "The fused feed pass in C (ranking/fused.py).", -1, methods};

PyMODINIT_FUNC PyInit__fastrank(void) { return PyModule_Create(&module); }
