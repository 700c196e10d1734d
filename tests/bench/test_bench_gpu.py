"""bench/bench_gpu.py on CPU: the tiny model through the real QA and classification training paths, the batch
size search's out-of-memory handling, and the FLOP count behind the utilisation figure."""

import json

import bench_gpu
import pytest
import torch


@pytest.mark.slow
@pytest.mark.skipif(not bench_gpu.DATA.is_dir(),
                    reason=f"the shared data ({bench_gpu.DATA}) is not beside the repository")
def test_tiny_benchmark_trains_both_tasks_and_reports_throughput(tmp_path):
    out = tmp_path / "bench_gpu.json"
    bench_gpu.main(["--tiny", "--precisions", "fp32", "--seq_lengths", "64", "--max_questions", "12",
                    "--max_batch_size", "2", "--output_json", str(out)])
    runs = json.loads(out.read_text())["runs"]
    assert [(run["task"], run["batch_size"]) for run in runs] == [("qa", 2), ("cls", 2)]
    for run in runs:
        assert run["steps"] == 2 and run["seconds"] > 0
        assert run["windows_per_s"] == pytest.approx(2 * 2 / run["seconds"], rel=0.01, abs=0.06)  # rounded
        assert run["tokens_per_s"] >= run["real_tokens_per_s"] > 0
        assert 0 < run["mean_padded_length"] <= 64
        assert run["tflops"] > 0 and run["mfu"] == pytest.approx(run["tflops"] / bench_gpu.H200_DENSE_BF16_TFLOPS)
        assert run["peak_memory_gib"] is None  # no GPU here


def test_batch_size_search_doubles_until_out_of_memory():
    tried = []

    def run(batch_size):
        tried.append(batch_size)
        if batch_size >= 64:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return batch_size

    fitted, failed_at = bench_gpu.batch_size_search(run, 16, 1024)
    assert fitted == [16, 32] and failed_at == 64 and tried == [16, 32, 64]
    assert bench_gpu.batch_size_search(run, 8, 16) == ([8, 16], None)


def test_batch_size_search_does_not_swallow_other_errors():
    def run(batch_size):
        raise ValueError("a real bug")

    with pytest.raises(ValueError, match="a real bug"):
        bench_gpu.batch_size_search(run, 16, 64)


def test_training_flops_count_the_dense_layers_and_attention():
    from transformers import AutoModelForQuestionAnswering, BertConfig

    config = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512)
    model = AutoModelForQuestionAnswering.from_config(config)
    dense = (sum(p.numel() for p in model.bert.encoder.parameters())
             + sum(p.numel() for p in model.qa_outputs.parameters()))
    assert bench_gpu.training_flops_per_token(model, 384) == 6 * dense + 12 * 2 * 64 * 384
