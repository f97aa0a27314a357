"""Direct vLLM LLM.generate on a data set's first N prompts with the benchmark's settings; prints the ids as JSON.

The SUT's accuracy logs must hold exactly these ids (greedy decoding, one sequence at a time: max_num_seqs=1, as
test_runs.py runs the SUT for them). Run as a script: vLLM's engine process
re-imports the main module, so the work sits under the __main__ guard.
"""
import json
import sys


def main(model: str, dataset: str, count: int) -> None:
    from vllm import LLM
    from vllm.inputs import TokensPrompt

    from mlperf_sut.generation import BENCHMARK_GENERATION

    prompts = [record["tok_input"] for record in json.load(open(dataset))[:count]]
    llm = LLM(model=model, max_num_seqs=1)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts],
                           BENCHMARK_GENERATION.sampling_params(streaming=False), use_tqdm=False)
    print("REFERENCE " + json.dumps([list(o.outputs[0].token_ids) for o in outputs]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
