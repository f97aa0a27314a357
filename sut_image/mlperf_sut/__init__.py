"""MLPerf Inference llama3.1-8b system under test: a LoadGen harness around vLLM."""

__version__ = "0.1.0"
