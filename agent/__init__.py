"""The Persephone agent: runs one workload in a pod, samples the GPU, serves results.

This package must stay cheap to import: the dashboard imports `agent.spec` and
`agent.schema` to validate launches, so nothing here imports torch or NVML.
"""

__version__ = "0.1.0"
