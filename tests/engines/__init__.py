"""Throwaway instances of the storage engines Burrow runs on, started and stopped by PID."""
