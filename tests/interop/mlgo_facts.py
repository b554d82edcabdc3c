"""What MLGO writes and reads, as documented for the fixture files in tests/testdata/mlgo/ (their README lists the
MLGO commit and tools that wrote them). Facts only: names, dtypes, shapes, partitions; no MLGO code."""

import os

TESTDATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "testdata", "mlgo")
CORPUS = os.path.join(TESTDATA, "corpus")
RECORDS = os.path.join(TESTDATA, "records", "trajectories-0-of-1.tfrecord")
PROFILE_MAX = os.path.join(TESTDATA, "records", "profile_max.json")
PROFILE_POL = os.path.join(TESTDATA, "records", "profile_pol.json")
VOCAB = os.path.join(TESTDATA, "vocab")
SAVED_POLICY = os.path.join(TESTDATA, "saved_policy")

# The 36 base inlining features clang-22 sends, and the three others MLGO's records and saved_policy carry.
BASE_FEATURES = (
    "call_argument_setup", "call_penalty", "callee_basic_block_count", "callee_conditionally_executed_blocks",
    "callee_users", "caller_basic_block_count", "caller_conditionally_executed_blocks", "caller_users",
    "callsite_cost", "callsite_height", "case_cluster_penalty", "cold_cc_penalty", "constant_args",
    "constant_offset_ptr_args", "cost_estimate", "dead_blocks", "edge_count", "indirect_call_penalty",
    "is_multiple_blocks", "jump_table_penalty", "last_call_to_static_bonus", "load_elimination",
    "load_relative_intrinsic", "lowered_call_arg_setup", "nested_inline_cost_estimate", "nested_inlines",
    "node_count", "nr_ctant_params", "num_loops", "simplified_instructions", "sroa_losses", "sroa_savings",
    "switch_default_dest_penalty", "switch_penalty", "threshold", "unsimplified_common_instructions",
)  # fmt: skip
EXTRA_FEATURES = ("is_callee_avail_external", "is_caller_avail_external", "inlining_default")
FEATURES = BASE_FEATURES + EXTRA_FEATURES

# The records, in file order: (module, horizon). brotli/dec/huffman has no decision and no record.
RECORD_HORIZONS = (
    ("brotli/enc/entropy_encode", 13),
    ("brotli/enc/histogram", 6),
    ("lz4/lz4hc", 604),
    ("brotli/enc/bit_cost", 3),
    ("brotli/enc/literal_cost", 7),
)
NO_DECISION_MODULE = "brotli/dec/huffman"

# The size partitions (bytes) the fixture's generator and trainer used: `label` = bisect_right(PARTITIONS, loss).
PARTITIONS = (
    285.0, 376.0, 452.0, 512.0, 571.0, 627.5, 720.0, 809.5, 1304.0, 1832.0, 2467.0, 3344.0, 4545.0, 6459.0, 9845.0,
    17953.0, 29430.5, 85533.5, 124361.0,
)  # fmt: skip
VOCAB_BUCKETS = 100


def il_parse_spec():
    """The sequence-feature spec MLGO's imitation-learning trainer parses records with: every observation feature
    int64 scalar, `module_name` string scalar, `label` int64 scalar, and the action `action` int64 scalar."""
    import tensorflow as tf

    spec = {name: tf.io.FixedLenSequenceFeature([], tf.int64) for name in FEATURES}
    spec["module_name"] = tf.io.FixedLenSequenceFeature([], tf.string)
    spec["label"] = tf.io.FixedLenSequenceFeature([], tf.int64)
    spec["action"] = tf.io.FixedLenSequenceFeature([], tf.int64)
    return spec


def action_signature_inputs():
    """{input: (dtype name, shape)} of the `action` signature of MLGO's saved_policy."""
    inputs = {name: ("int64", [1]) for name in FEATURES}
    inputs.update(step_type=("int32", [1]), reward=("float32", [1]), discount=("float32", [1]))
    return inputs
