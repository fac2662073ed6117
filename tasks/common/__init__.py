"""Machinery shared by every task: configs, runtime, checkpoints, logging, data, metrics, tables."""
