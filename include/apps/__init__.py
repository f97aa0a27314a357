"""The entry points people run, apart from the library they call: `python -m include` (`cli`), the demo and the DAG on
one host (`demo`, `host`), the local UI (`ui`), the plan export (`plan_cli`) and the published-results refresh
(`published_refresh`). Nothing in the library imports them."""
