"""An MLPerf submission tree from one pipeline run, and our own check of it against MLCommons' rules.

    layout.py       the tree the checker of LoadGen 6.0.x's round expects (results/<system>/llama3.1-8b/<scenario>/)
    system_desc.py  systems/<system>.json from what the SUT recorded plus deploy-time fields; missing ones named
    test06.py       the TEST06 compliance verification (MLCommons' compliance/TEST06/run_verification.py's criteria)
    checker.py      the rules of the official checker that apply to llama3.1-8b, by round (--version), each
                    failure with rule and file

The rules themselves (file lists, required fields, each round's seeds and layout, limits) are in
include/mlperf_rules.py.
"""
