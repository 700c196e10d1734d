"""The shared core: arguments, scripts' entry point and logging, errors, results I/O, precision, compilation, plots,
packaged models, network checks, whole-column reads, the base Trainer."""
