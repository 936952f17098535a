// qconvert: Hugging Face checkpoint folder or GGUF file -> one qrun model file; --info prints a file.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "convert/converter.h"
#include "convert/gguf_convert.h"
#include "quant/type_policy.h"
#include "src/cli/cli_common.h"
#include "qrun/error.h"
#include "qrun/mapped_file.h"
#include "qrun/model_file.h"
#include "qrun/model_info.h"
#include "qrun/progress.h"

namespace {

// An interrupted conversion must leave no file behind: unlink the temp file (unlink is
// async-signal-safe) and re-raise.
void remove_temp_file() {
  const char* tmp = qrun::model_writer_temp_path();
  if (tmp[0]) ::unlink(tmp);
}

// The writer renames its finished file over the destination; when that is the input
// checkpoint (or one of its files) the conversion would replace its own source.
bool output_replaces_input(const std::string& input, const std::string& output) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(output, ec)) return false;
  if (!fs::is_directory(input, ec)) return fs::equivalent(input, output, ec);
  for (const auto& entry : fs::directory_iterator(input, ec))
    if (fs::equivalent(entry.path(), output, ec)) return true;
  return false;
}

void on_signal(int sig) {
  remove_temp_file();
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
  // A checkpoint (or, with --info, a model file) truncated while mapped: one line, exit 1.
  qrun::install_mapping_fault_handler("qconvert", remove_temp_file);
  CLI::App app{"qconvert: convert a Hugging Face checkpoint or a GGUF file to a qrun model file"};
  std::string in_dir, out_path, type_name, info_path;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool verify = false;
  app.add_option("hf_dir", in_dir, "Hugging Face folder (config.json, *.safetensors, tokenizer files) or a GGUF file");
  app.add_option("-o,--output", out_path, "Output model file");
  app.add_option("--type", type_name,
                 "Weight type, bits per weight: " + qrun::type_policy_choices() +
                     "; GGUF input also keep (its tensors as they are where qrun has the same block type, the "
                     "default there); default q4")
      ->check([](const std::string& v) {
        qrun::TypePolicy p;
        return v == "keep" || qrun::parse_type_policy(v, &p) ? std::string()
                                                             : "unknown type '" + v + "'; one of: keep, " +
                                                                   qrun::type_policy_choices();
      });
  std::vector<std::string> tensor_types;
  app.add_option("--tensor-type", tensor_types,
                 "PATTERN=TYPE: store the tensors whose qrun name matches the regex as TYPE, before --type's "
                 "choice (e.g. --tensor-type 'w2=q6' --tensor-type 'output=q8'); repeatable")
      ->check(qrun::cli::ParsedBy(qrun::parse_tensor_type_rule));
  qrun::CalibrationOptions calibration;
  app.add_option("--calibrate", calibration.text_file,
                 "Weight each matrix's quantization error by the mean square of its inputs when the model (as "
                 "F16) reads this text (llama.cpp's imatrix idea); from GGUF input, the tensors it re-quantizes");
  app.add_option("--calibrate-chunks", calibration.chunks, "With --calibrate: at most this many windows (default 16)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--calibrate-ctx", calibration.context,
                 "With --calibrate: tokens per window (default 512, at most the trained context)")
      ->check(CLI::Range(2, 1 << 20));
  qrun::cli::LoraFlags lora;
  qrun::cli::add_lora_options(app, lora, "Merge this PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) into the weights before quantizing");
  app.add_option("-t,--threads", threads, "Quantization threads (default: all cores)")->check(CLI::Range(1, 1024));
  app.add_option("--info", info_path, "Print the header and tensor table of a qrun model file and exit");
  app.add_flag("--verify", verify, "With --info: also verify every tensor checksum");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return qrun::cli::usage_exit(app, e);
  }

  try {
    if (!info_path.empty() && (!in_dir.empty() || !out_path.empty())) {
      std::cerr << "qconvert: --info FILE prints a model file; it takes no HF_DIR or -o (see --help)\n";
      return 2;
    }
    if (verify && info_path.empty()) {
      std::cerr << "qconvert: --verify goes with --info FILE (see --help)\n";
      return 2;
    }
    if (!info_path.empty()) {
      qrun::ModelFile model(info_path);
      qrun::print_model_info(model, std::cout);
      if (verify) {
        model.verify_checksums();
        std::cout << "checksums:     all " << model.tensors().size() << " tensors OK\n";
      }
      return 0;
    }
    if (in_dir.empty() || out_path.empty()) {
      std::cerr << "qconvert: need HF_DIR and -o OUTPUT (or --info FILE); see --help\n";
      return 2;
    }
    if (output_replaces_input(in_dir, out_path)) {
      std::cerr << "qconvert: -o " << out_path << " is a file of the input " << in_dir << "; write the model elsewhere\n";
      return 2;
    }
    ::signal(SIGINT, on_signal);
    ::signal(SIGTERM, on_signal);
    qrun::ConvertOptions opt;
    qrun::GgufImportOptions gguf_opt;
    const bool gguf = qrun::is_gguf_file(in_dir);
    if (type_name.empty()) type_name = gguf ? "keep" : "q4";
    if (type_name == "keep") {
      if (!gguf) {
        std::cerr << "qconvert: --type keep needs a GGUF input file\n";
        return 2;
      }
      gguf_opt.keep_types = true;
    } else {
      qrun::TypePolicy policy;
      qrun::parse_type_policy(type_name, &policy);  // checked by CLI11 above
      opt.weight_type = policy.base;
      opt.mixed = policy.mixed;
      opt.tensor_types = tensor_types;
    }
    if (gguf && !(lora.dirs.empty() && lora.scaled.empty())) {
      std::cerr << "qconvert: --lora merges into a Hugging Face checkpoint folder, not a GGUF file\n";
      return 2;
    }
    opt.lora = lora.adapters();
    opt.threads = threads;
    qrun::ProgressBar f16_bar("calibration: f16 copy"), run_bar("calibration: running");
    calibration.convert_progress = [&](const qrun::WriteProgress& p) {
      f16_bar.update(p.bytes_done, p.bytes_total, p.tensor ? *p.tensor : "done");
      if (!p.tensor) f16_bar.finish();
    };
    calibration.progress = [&](int window, int windows) {
      run_bar.update(static_cast<uint64_t>(window), static_cast<uint64_t>(windows),
                     "window " + std::to_string(window) + "/" + std::to_string(windows));
      if (window == windows) run_bar.finish();
    };
    opt.calibration = calibration;
    qrun::ProgressBar bar("converting");
    opt.progress = [&](const qrun::WriteProgress& p) { bar.update(p.bytes_done, p.bytes_total, p.tensor ? *p.tensor : "done"); };
    const auto t0 = std::chrono::steady_clock::now();
    const auto s = gguf ? qrun::convert_gguf(in_dir, out_path, opt, gguf_opt)
                        : qrun::convert_hf_checkpoint(in_dir, out_path, opt);
    bar.finish();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "wrote %s: %.2f MiB, %s", out_path.c_str(), static_cast<double>(s.file_size) / (1 << 20),
                 type_name.c_str());
    if (s.quantized_weights)
      std::fprintf(stderr, ", %.3f bits/weight over %.1fM quantized weights",
                   8.0 * static_cast<double>(s.quantized_bytes) / static_cast<double>(s.quantized_weights),
                   static_cast<double>(s.quantized_weights) / 1e6);
    std::fprintf(stderr, ", %.2f s\n", secs);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "qconvert: " << e.what() << "\n";
    return 1;
  }
}
