"""The transfer matrix: its report files, the robustness probes, the overlap analysis."""
