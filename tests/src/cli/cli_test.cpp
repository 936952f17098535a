// The tools as a user meets them: bad input gives one clear line and a non-zero
// exit, never a crash; good input produces text and the timing block.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/model_fixture.h"
#include "common/run_command.h"
#include "common/lora_adapter_writer.h"
#include "qrun/embedding.h"

#include <nlohmann/json.hpp>

namespace qrun {
namespace {

using test::quoted;
using test::run_command;

std::string tool(const char* name) { return (test::bin_dir() / name).string(); }

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(QrunCli, GeneratesAStoryAndPrintsTimings) {
  const auto model = test::converted_stories(DType::Q4).string();
  const auto r = run_command(tool("qrun") + " -m " + quoted(model) + " -p 'Once upon a time' -n 40 --temp 0 -t 1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("load time"), std::string::npos);
  EXPECT_NE(r.out.find("tokens per second"), std::string::npos);
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos);
}

// --embedding prints the library's vector for the prompt, and refuses generation flags.
TEST(QrunCli, EmbeddingPrintsTheLibrarysVector) {
  const auto model = test::converted_stories(DType::Q8).string();
  RuntimeOptions ro;
  ro.threads = 1;
  Model m(model, ro);
  const std::vector<int32_t> ids = m.tokenizer().encode("Once upon a time", true, false);
  for (const auto& [flag, pooling] : {std::pair<std::string, Pooling>{"", Pooling::Last}, {" --pooling mean", Pooling::Mean}}) {
    std::string cmd = "(";  // stdout alone: the vector
    cmd += tool("qrun") + " -m " + quoted(model) + " -t 1 -p 'Once upon a time' --embedding" + flag + " 2>/dev/null)";
    const auto r = run_command(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const std::vector<float> got = nlohmann::json::parse(r.out).get<std::vector<float>>();
    EXPECT_EQ(got, embed(m, ids, pooling)) << flag;  // each float's shortest text reads back as it
  }
  const auto r = run_command(tool("qrun") + " -m " + quoted(model) + " -p hi --embedding --json");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("--embedding generates nothing"), std::string::npos) << r.out;
}

struct BadInvocation {
  const char* name;
  std::string args;
  const char* expect;
};

TEST(QrunCli, BadInputGivesOneLineAndNonZeroExit) {
  const auto model = test::converted_stories(DType::Q8).string();
  test::ScratchDir dir;
  test::write_text(dir / "garbage.q4", "this is not a model file at all, just text long enough to read a header...........................................................................................................");
  const std::vector<BadInvocation> cases = {
      {"missing model", "-m /nonexistent.q4 -p hi", "/nonexistent.q4: cannot open"},
      {"corrupt model", "-m " + quoted((dir / "garbage.q4").string()) + " -p hi", "bad magic"},
      {"empty prompt", "-m " + quoted(model) + " -p ''", "empty prompt"},
      {"prompt too long", "-m " + quoted(model) + " -c 4 -p 'Once upon a time there was'", "longer than the context"},
      {"missing prompt file", "-m " + quoted(model) + " -f /nonexistent.txt", "/nonexistent.txt: cannot open"},
      {"prompt file is a folder", "-m " + quoted(model) + " -f " + quoted(dir.path().string()), "is a directory"},
      {"--keep fills the context", "-m " + quoted(model) + " -p hi -c 8 --keep 7", "leaves no room"},
      {"model is a folder", "-m " + quoted(dir.path().string()) + " -p hi", "is a directory"},
      {"model is a checkpoint", "-m " + quoted(test::stories_dir().string()) + " -p hi", "convert it with qconvert"},
  };
  for (const auto& c : cases) {
    const auto r = run_command(tool("qrun") + " " + c.args);
    EXPECT_NE(r.exit_code, 0) << c.name;
    EXPECT_LT(r.exit_code, 128) << c.name << " crashed: " << r.out;
    EXPECT_NE(r.out.find(c.expect), std::string::npos) << c.name << ": " << r.out;
    EXPECT_EQ(count_lines(r.out), 1) << c.name << ": " << r.out;
  }
}

TEST(QrunCli, InvalidFlagsAreRefused) {
  for (const std::string args : {"-m x.q4 -p hi --temp -1", "-m x.q4 -p hi -t abc", "-m x.q4 --no-such-flag", "-p hi",
                                 "-m x.q4 -p hi --q8-activations 12"}) {
    const auto r = run_command(tool("qrun") + " " + args);
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_LT(r.exit_code, 128) << args;
  }
  // Usage errors exit 2, NaN included (a range check alone lets it through), and values
  // that would mean nothing (a penalty of 0 divides by it; a budget under one byte).
  for (const std::string args : {"--temp nan", "--top-p nan", "--min-p nan", "--repeat-penalty nan", "--repeat-penalty 0",
                                 "--mem-budget 0.5", "--mem-budget inf", "--mem-budget 99999999999999999999G",
                                 "--mem-budget 2X", "-f /etc/hostname", "--seed 9223372036854775808",
                                 "--seed 18446744073709551615", "--seed -2", "--seed 1.5", "--frequency-penalty 2.5",
                                 "--presence-penalty nan", "--prefetch l3:5", "--prefetch l2:abc", "--gpu-layers 5-2",
                                 "--gpu-layers x", "-ctk q4_1", "--cache-type-v bf16", "-ctv"}) {
    const auto r = run_command(tool("qrun") + " -m x.q4 -p hi " + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.out;
  }
}

// The estimate names the GPU memory of offloaded layers (computed from the header, so
// it needs no GPU), grows with the number of layers, and refuses layers the model lacks.
TEST(QrunCli, EstimateIncludesDeviceMemoryOfOffloadedLayers) {
  const auto model = test::converted_stories(DType::Q4).string();
  auto device_mib = [&](const std::string& flags) {
    const auto r = run_command(tool("qrun") + " -m " + quoted(model) + " --estimate " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    const auto at = r.out.find("device");
    return at == std::string::npos ? -1.0 : std::stod(r.out.substr(at + 6));
  };
  EXPECT_EQ(device_mib(""), -1.0);
  const double two = device_mib("-ngl 2"), all = device_mib("--gpu-layers 0-4");
  EXPECT_GT(two, 0);
  EXPECT_GT(all, two);
  const auto r = run_command(tool("qrun") + " -m " + quoted(model) + " --estimate --gpu-layers 3-9");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("outside the model's 5 layers"), std::string::npos) << r.out;
}

// -ctk/-ctv q8_0 and q4_0 (llama.cpp's flags): the estimate names the types and counts the
// smaller cache; a run says which cache it used in its timing block.
TEST(QrunCli, QuantizedKvCacheIsEstimatedAndNamed) {
  const auto model = test::converted_stories(DType::Q8).string();
  auto kv_line = [&](const std::string& flags) {
    const auto r = run_command(tool("qrun") + " -m " + quoted(model) + " -c 256 --estimate " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    const auto at = r.out.find("kv cache");
    return at == std::string::npos ? std::string() : r.out.substr(at, r.out.find('\n', at) - at);
  };
  const std::string f16 = kv_line(""), q8 = kv_line("-ctk q8_0 -ctv q8_0"), keys = kv_line("--cache-type-k q8_0");
  EXPECT_NE(f16.find("(f16)"), std::string::npos) << f16;
  EXPECT_NE(q8.find("(q8_0)"), std::string::npos) << q8;
  EXPECT_NE(keys.find("(keys q8_0, values f16)"), std::string::npos) << keys;
  // stories260K's head of 8 is one q8_0 group: 10 bytes where f16 takes 16 (q4_0: 6).
  EXPECT_NEAR(std::stod(q8.substr(8)), std::stod(f16.substr(8)) * 10 / 16, 0.05) << q8 << " / " << f16;
  const std::string q4 = kv_line("-ctk q4_0 -ctv q4_0");
  EXPECT_NE(q4.find("(q4_0)"), std::string::npos) << q4;
  EXPECT_NEAR(std::stod(q4.substr(8)), std::stod(f16.substr(8)) * 6 / 16, 0.05) << q4 << " / " << f16;
  for (const char* type : {"q8_0", "q4_0"}) {
    const auto r = run_command(tool("qrun") + " -m " + quoted(model) + " -p 'Once upon a time' -n 8 -t 1 -ctk " + type +
                               " -ctv " + type);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find(std::string("KV cache ") + type), std::string::npos) << r.out;
  }
  const auto bad = run_command(tool("qrun") + " -m " + quoted(model) + " -p 'Once' -n 1 -ctk q4_1");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("q4_0"), std::string::npos) << bad.out;  // the accepted names
}

TEST(QconvertCli, InfoShowsAValidFile) {
  const auto model = test::converted_stories(DType::Q4).string();
  const auto r = run_command(tool("qconvert") + " --info " + quoted(model) + " --verify");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* want : {"architecture:  llama", "layers:        5", "layer 4:", "layers.0.wq", "checksums:     all"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
}

TEST(QconvertCli, RefusesUnknownTypeAndMissingFolder) {
  test::ScratchDir dir;
  auto r = run_command(tool("qconvert") + " " + quoted(test::stories_dir().string()) + " -o " +
                       quoted((dir / "x").string()) + " --type q7");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("unknown type 'q7'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("q4m"), std::string::npos) << r.out;  // the choices are listed
  r = run_command(tool("qconvert") + " /nonexistent-folder -o " + quoted((dir / "x").string()));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("/nonexistent-folder"), std::string::npos) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// An output that is one of the input's files would replace the checkpoint being read;
// flags of the other mode (--info, --verify) are refused, not ignored.
TEST(QconvertCli, RefusesToOverwriteItsInputAndMixedModes) {
  test::ScratchDir dir;
  const auto in = dir / "hf";
  std::filesystem::copy(test::stories_dir(), in);
  const auto weights = in / "model.safetensors";
  const auto size = std::filesystem::file_size(weights);
  auto r = run_command(tool("qconvert") + " " + quoted(in.string()) + " -o " + quoted(weights.string()));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("is a file of the input"), std::string::npos) << r.out;
  EXPECT_EQ(std::filesystem::file_size(weights), size);
  r = run_command(tool("qconvert") + " --info " + quoted(test::converted_stories(DType::Q4).string()) + " -o " +
                  quoted((dir / "x").string()));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  r = run_command(tool("qconvert") + " " + quoted(in.string()) + " -o " + quoted((dir / "x").string()) + " --verify");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "x"));
}

// --lora / --lora-scaled DIR SCALE reach the converter (tests/convert/lora_adapter_test.cpp
// checks the sums); a scale that is not a number is a usage error.
TEST(QconvertCli, MergesLoraAdapters) {
  test::ScratchDir dir;
  const auto adapter = dir / "adapter";
  std::filesystem::create_directories(adapter);
  const std::string p = "base_model.model.model.layers.0.self_attn.q_proj.";
  test::write_safetensors(adapter / "adapter_model.safetensors",
                          {test::f32_tensor(p + "lora_A.weight", {2, 64}, std::vector<float>(128, 0.01f)),
                           test::f32_tensor(p + "lora_B.weight", {64, 2}, std::vector<float>(128, 0.02f))});
  test::write_text(adapter / "adapter_config.json", R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4})");
  const std::string base = tool("qconvert") + " " + quoted(test::stories_dir().string()) + " --type q8 -o ";
  auto r = run_command(base + quoted((dir / "a.q8").string()) + " --lora " + quoted(adapter.string()) +
                       " --lora-scaled " + quoted(adapter.string()) + " 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  r = run_command(base + quoted((dir / "b.q8").string()) + " --lora-scaled " + quoted(adapter.string()) + " half");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("--lora-scaled: " + adapter.string() + " half: the scale is not a number"), std::string::npos)
      << r.out;
  r = run_command(base + quoted((dir / "b.q8").string()) + " --lora " + quoted((dir / "none").string()));
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "b.q8"));
}

// qrun and qppl --lora: the adapter changes what the model says; a scale that is not a
// number is a usage error; an adapter of another model is one line naming its file.
TEST(QrunCli, AppliesLoraAdaptersAtRunTime) {
  test::ScratchDir dir;
  test::write_lora_adapter(test::stories_dir(), dir / "adapter", test::stories_layer_modules(1));
  const std::string model = test::converted_stories(DType::Q8).string(), adapter = quoted((dir / "adapter").string());
  const std::string run = tool("qrun") + " -m " + quoted(model) + " -p 'Once upon a time' -n 24 --temp 0 -t 1";
  auto text = [&](const std::string& flags) {  // the generated text, after the adapter's line, before the timings
    const auto r = run_command(run + flags);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    const std::string said = "qrun: lora: 7 matrices adapted at run time, rank 4, 0.0 MiB of f16 factors\n";
    const size_t from = flags.empty() ? 0 : r.out.find(said) + said.size();
    EXPECT_TRUE(flags.empty() || r.out.starts_with(said)) << r.out;
    return r.out.substr(from, r.out.find("\n\nqrun: load time") - from);
  };
  const std::string plain = text("");
  EXPECT_NE(text(" --lora " + adapter), plain);
  EXPECT_EQ(text(" --lora-scaled " + adapter + " 0"), plain);  // scaled to nothing
  auto r = run_command(run + " --lora-scaled " + adapter + " x1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("the scale is not a number"), std::string::npos) << r.out;

  const std::string phi3_module = "base_model.model.model.layers.0.self_attn.qkv_proj.";
  std::filesystem::create_directories(dir / "other");
  test::write_safetensors(dir / "other" / "adapter_model.safetensors",
                          {test::f32_tensor(phi3_module + "lora_A.weight", {2, 64}, std::vector<float>(128, 0.1f)),
                           test::f32_tensor(phi3_module + "lora_B.weight", {128, 2}, std::vector<float>(256, 0.1f))});
  test::write_text(dir / "other" / "adapter_config.json", "{}");
  r = run_command(tool("qrun") + " -m " + quoted(model) + " -p hi --lora " + quoted((dir / "other").string()));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find((dir / "other" / "adapter_model.safetensors").string() +
                       ": LoRA module 'model.layers.0.self_attn.qkv_proj' changes"), std::string::npos) << r.out;
  EXPECT_EQ(count_lines(r.out), 1) << r.out;
  test::write_text(dir / "text.txt", "Once upon a time there was a little girl who liked to play in the park.");
  r = run_command(tool("qppl") + " -m " + quoted(model) + " -c 8 -f " + quoted((dir / "text.txt").string()) +
                  " --lora " + quoted((dir / "other").string()));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("qppl: " + (dir / "other" / "adapter_model.safetensors").string()), std::string::npos) << r.out;
}

}  // namespace
}  // namespace qrun
