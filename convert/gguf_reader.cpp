#include "convert/gguf_reader.h"

#include <algorithm>
#include <cstring>

#include "qrun/error.h"

namespace qrun {

namespace {

constexpr uint64_t kMaxKeyLen = 1 << 16;
constexpr uint64_t kMaxTensorName = 63;          // ggml's GGML_MAX_NAME is 64 with the NUL
constexpr uint64_t kMaxAlignment = uint64_t{1} << 30;
constexpr int64_t kMaxElements = int64_t{1} << 50;

int64_t value_size(uint32_t t) {  // bytes of a fixed-size scalar, 0 for string/array/unknown
  switch (static_cast<GgufValueType>(t)) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::Bool: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    default: return 0;
  }
}

bool is_integer_type(GgufValueType t) {
  return t == GgufValueType::U8 || t == GgufValueType::I8 || t == GgufValueType::U16 || t == GgufValueType::I16 ||
         t == GgufValueType::U32 || t == GgufValueType::I32 || t == GgufValueType::U64 || t == GgufValueType::I64;
}

bool is_numeric_type(GgufValueType t) {
  return is_integer_type(t) || t == GgufValueType::F32 || t == GgufValueType::F64;
}

// Decodes one fixed-size scalar at p into integer and double forms.
void decode_scalar(GgufValueType t, const uint8_t* p, int64_t* i, uint64_t* u, double* f, bool* negative) {
  auto load = [&](auto v) {
    std::memcpy(&v, p, sizeof(v));
    return v;
  };
  *negative = false;
  switch (t) {
    case GgufValueType::U8: case GgufValueType::Bool: *u = load(uint8_t{}); *i = static_cast<int64_t>(*u); *f = static_cast<double>(*u); return;
    case GgufValueType::U16: *u = load(uint16_t{}); *i = static_cast<int64_t>(*u); *f = static_cast<double>(*u); return;
    case GgufValueType::U32: *u = load(uint32_t{}); *i = static_cast<int64_t>(*u); *f = static_cast<double>(*u); return;
    case GgufValueType::U64:
      *u = load(uint64_t{});
      *i = *u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(*u);
      *f = static_cast<double>(*u);
      return;
    case GgufValueType::I8: *i = load(int8_t{}); break;
    case GgufValueType::I16: *i = load(int16_t{}); break;
    case GgufValueType::I32: *i = load(int32_t{}); break;
    case GgufValueType::I64: *i = load(int64_t{}); break;
    case GgufValueType::F32: *f = load(float{}); *i = 0; *u = 0; return;
    case GgufValueType::F64: *f = load(double{}); *i = 0; *u = 0; return;
    default: return;
  }
  *negative = *i < 0;
  *u = *negative ? 0 : static_cast<uint64_t>(*i);
  *f = static_cast<double>(*i);
}

// Bounds-checked cursor over the mapped bytes.
class Cursor {
 public:
  Cursor(const GgufFile& f, const uint8_t* data, uint64_t size) : f_(f), data_(data), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  void need(uint64_t n, const char* what) const {
    if (n > left())
      f_.fail(pos_, std::string("truncated: ") + what + " needs " + std::to_string(n) + " bytes, " +
                        std::to_string(left()) + " left in the file");
  }
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string_view string(const char* what, uint64_t max_len) {
    const uint64_t at = pos_;
    const auto n = get<uint64_t>(what);
    if (n > max_len)
      f_.fail(at, std::string(what) + " length " + std::to_string(n) + " exceeds the limit " + std::to_string(max_len));
    if (n > left())
      f_.fail(at, std::string(what) + " length " + std::to_string(n) + " runs past the end of the file (" +
                      std::to_string(left()) + " bytes left)");
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }
  void skip(uint64_t n) { pos_ += n; }  // only after need()

 private:
  const GgufFile& f_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 80)) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  if (s.size() > 80) out += "...";
  return out + "'";
}

}  // namespace

const char* gguf_value_type_name(uint32_t t) {
  static const char* kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};
  return t < 13 ? kNames[t] : "unknown";
}

std::string ggml_type_name(uint32_t t) {
  switch (static_cast<GgmlType>(t)) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q4_1: return "Q4_1";
    case GgmlType::Q5_0: return "Q5_0";
    case GgmlType::Q5_1: return "Q5_1";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::Q8_1: return "Q8_1";
    case GgmlType::Q2_K: return "Q2_K";
    case GgmlType::Q3_K: return "Q3_K";
    case GgmlType::Q4_K: return "Q4_K";
    case GgmlType::Q5_K: return "Q5_K";
    case GgmlType::Q6_K: return "Q6_K";
    case GgmlType::Q8_K: return "Q8_K";
    case GgmlType::I8: return "I8";
    case GgmlType::I16: return "I16";
    case GgmlType::I32: return "I32";
    case GgmlType::I64: return "I64";
    case GgmlType::F64: return "F64";
    case GgmlType::BF16: return "BF16";
    case GgmlType::IQ4_NL: return "IQ4_NL";
    case GgmlType::MXFP4: return "MXFP4";
  }
  static const char* kIq[] = {"IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS"};
  if (t >= 16 && t <= 23) return kIq[t - 16];
  if (t == 29) return "IQ1_M";
  if (t == 34) return "TQ1_0";
  if (t == 35) return "TQ2_0";
  return "type " + std::to_string(t);
}

bool ggml_type_geometry(uint32_t t, int64_t* be, int64_t* bb) {
  auto set = [&](int64_t e, int64_t b) {
    *be = e;
    *bb = b;
    return true;
  };
  switch (static_cast<GgmlType>(t)) {
    case GgmlType::F32: return set(1, 4);
    case GgmlType::F16: return set(1, 2);
    case GgmlType::BF16: return set(1, 2);
    case GgmlType::Q4_0: return set(32, 18);
    case GgmlType::Q4_1: return set(32, 20);
    case GgmlType::Q5_0: return set(32, 22);
    case GgmlType::Q5_1: return set(32, 24);
    case GgmlType::Q8_0: return set(32, 34);
    case GgmlType::Q8_1: return set(32, 36);
    case GgmlType::Q2_K: return set(256, 84);
    case GgmlType::Q3_K: return set(256, 110);
    case GgmlType::Q4_K: return set(256, 144);
    case GgmlType::Q5_K: return set(256, 176);
    case GgmlType::Q6_K: return set(256, 210);
    case GgmlType::Q8_K: return set(256, 292);
    case GgmlType::IQ4_NL: return set(32, 18);
    case GgmlType::MXFP4: return set(32, 17);
    case GgmlType::I8: return set(1, 1);
    case GgmlType::I16: return set(1, 2);
    case GgmlType::I32: return set(1, 4);
    case GgmlType::I64: return set(1, 8);
    case GgmlType::F64: return set(1, 8);
  }
  return false;
}

GgufFile::GgufFile(const std::string& path) : map_(path, LoadMode::Mmap), name_(path) {
  data_ = map_.data();
  size_ = map_.size();
  parse();
}

GgufFile::GgufFile(const uint8_t* data, uint64_t size, std::string name)
    : data_(data), size_(size), name_(std::move(name)) {
  parse();
}

void GgufFile::fail(uint64_t offset, const std::string& why) const {
  throw Error(name_, static_cast<int64_t>(offset), why);
}

void GgufFile::parse() {
  Cursor c(*this, data_, size_);
  c.need(4, "magic");
  if (std::memcmp(data_, "GGUF", 4) != 0) {
    if (std::memcmp(data_, "FUGG", 4) == 0) fail(0, "big-endian GGUF files are not supported");
    fail(0, "not a GGUF file (magic is not \"GGUF\")");
  }
  c.skip(4);
  version_ = c.get<uint32_t>("version");
  if (version_ == 1) fail(4, "GGUF version 1 is not supported (only versions 2 and 3)");
  if (version_ != 2 && version_ != 3)
    fail(4, "GGUF version " + std::to_string(version_) + " is not supported (only versions 2 and 3)");
  const uint64_t n_tensors_at = c.pos();
  const auto n_tensors = c.get<uint64_t>("tensor count");
  const uint64_t n_kv_at = c.pos();
  const auto n_kv = c.get<uint64_t>("metadata key count");
  // Each key/value takes at least 13 bytes (key length, type, a 1-byte value); each
  // tensor info at least 32 (name length, n_dims, one dimension, type, offset).
  if (n_kv > c.left() / 13)
    fail(n_kv_at, "metadata key count " + std::to_string(n_kv) + " cannot fit in the " + std::to_string(c.left()) +
                      " bytes left");
  if (n_tensors > c.left() / 32)
    fail(n_tensors_at, "tensor count " + std::to_string(n_tensors) + " cannot fit in the " +
                           std::to_string(c.left()) + " bytes left");

  kvs_.reserve(static_cast<size_t>(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    const uint64_t key_at = c.pos();
    GgufKV kv;
    kv.key = std::string(c.string("metadata key", kMaxKeyLen));
    if (kv.key.empty()) fail(key_at, "metadata key " + std::to_string(k) + " is empty");
    kv.offset = c.pos();
    const auto type = c.get<uint32_t>("value type");
    if (type > 12) fail(kv.offset, "key " + quoted(kv.key) + " has unknown value type " + std::to_string(type));
    kv.type = static_cast<GgufValueType>(type);
    if (kv.type == GgufValueType::String) {
      kv.str = c.string("string value", UINT64_MAX);
    } else if (kv.type == GgufValueType::Array) {
      const uint64_t et_at = c.pos();
      const auto et = c.get<uint32_t>("array element type");
      if (et > 12) fail(et_at, "key " + quoted(kv.key) + ": array of unknown element type " + std::to_string(et));
      if (et == static_cast<uint32_t>(GgufValueType::Array))
        fail(et_at, "key " + quoted(kv.key) + ": arrays of arrays are not supported");
      kv.elem_type = static_cast<GgufValueType>(et);
      const uint64_t count_at = c.pos();
      kv.count = c.get<uint64_t>("array length");
      const uint64_t min_elem = et == static_cast<uint32_t>(GgufValueType::String) ? 8 : static_cast<uint64_t>(value_size(et));
      if (kv.count > c.left() / min_elem)
        fail(count_at, "key " + quoted(kv.key) + ": array of " + std::to_string(kv.count) + " " +
                           gguf_value_type_name(et) + " runs past the end of the file (" + std::to_string(c.left()) +
                           " bytes left)");
      kv.data_offset = c.pos();
      if (kv.elem_type == GgufValueType::String) {
        kv.strings.reserve(static_cast<size_t>(kv.count));
        for (uint64_t e = 0; e < kv.count; ++e) kv.strings.push_back(c.string("array string", UINT64_MAX));
      } else {
        c.skip(kv.count * min_elem);
      }
    } else {
      const int64_t n = value_size(type);
      c.need(static_cast<uint64_t>(n), "scalar value");
      bool negative;
      decode_scalar(kv.type, data_ + c.pos(), &kv.i, &kv.u, &kv.f, &negative);
      c.skip(static_cast<uint64_t>(n));
    }
    if (kv_index_.count(kv.key)) fail(key_at, "duplicate metadata key " + quoted(kv.key));
    kv_index_.emplace(kv.key, kvs_.size());
    kvs_.push_back(std::move(kv));
  }

  if (const GgufKV* a = find("general.alignment")) {
    if (a->type != GgufValueType::U32)
      fail(a->offset, std::string("general.alignment is a ") + gguf_value_type_name(static_cast<uint32_t>(a->type)) +
                          ", not a u32");
    if (a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > kMaxAlignment)
      fail(a->offset, "general.alignment " + std::to_string(a->u) + " is not a power of two in [1, 2^30]");
    alignment_ = a->u;
  }

  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo t;
    t.info_offset = c.pos();
    const std::string_view name = c.string("tensor name", kMaxTensorName);
    t.name = std::string(name);
    const std::string who = "tensor " + quoted(t.name);
    const uint64_t dims_at = c.pos();
    t.n_dims = c.get<uint32_t>("tensor n_dims");
    if (t.n_dims < 1 || t.n_dims > 4) fail(dims_at, who + " has n_dims " + std::to_string(t.n_dims) + " (1 to 4 allowed)");
    int64_t elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      const uint64_t ne_at = c.pos();
      const auto ne = c.get<uint64_t>("tensor dimension");
      if (ne == 0 || ne > static_cast<uint64_t>(kMaxElements))
        fail(ne_at, who + " dimension " + std::to_string(d) + " is " + std::to_string(ne) + " (1 to 2^50 allowed)");
      t.ne[d] = static_cast<int64_t>(ne);
      if (__builtin_mul_overflow(elements, t.ne[d], &elements) || elements > kMaxElements)
        fail(ne_at, who + " has more than 2^50 elements");
    }
    const uint64_t type_at = c.pos();
    t.type = c.get<uint32_t>("tensor type");
    int64_t be, bb;
    if (!ggml_type_geometry(t.type, &be, &bb))
      fail(type_at, who + " has unsupported type " + ggml_type_name(t.type));
    if (t.ne[0] % be != 0)
      fail(dims_at, who + " row of " + std::to_string(t.ne[0]) + " elements is not a whole number of " +
                        ggml_type_name(t.type) + " blocks of " + std::to_string(be));
    // elements <= 2^50 and bb/be <= 8 bytes per element: no overflow.
    t.size = static_cast<uint64_t>(elements / be * bb);
    const uint64_t off_at = c.pos();
    t.offset = c.get<uint64_t>("tensor offset");
    if (t.offset % alignment_ != 0)
      fail(off_at, who + " data offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                       std::to_string(alignment_));
    t.info_offset = off_at;  // messages about extent point at the offset field
    if (tensor_index_.count(t.name)) fail(off_at, "duplicate tensor name " + quoted(t.name));
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  const uint64_t end_of_infos = c.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;  // alignment <= 2^30: no overflow
  if (!tensors_.empty() && data_offset_ > size_)
    fail(end_of_infos, "data section at offset " + std::to_string(data_offset_) + " starts past the end of the file (" +
                           std::to_string(size_) + " bytes)");
  const uint64_t data_size = data_offset_ <= size_ ? size_ - data_offset_ : 0;
  for (GgufTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.size > data_size - t.offset)
      fail(t.info_offset, "tensor " + quoted(t.name) + " (" + std::to_string(t.size) + " bytes at data offset " +
                              std::to_string(t.offset) + ") lies outside the data section of " +
                              std::to_string(data_size) + " bytes");
    t.offset += data_offset_;
  }
  // No two tensors may share bytes: a writer that overlaps them is broken or hostile.
  std::vector<const GgufTensorInfo*> by_offset;
  for (const auto& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const GgufTensorInfo& a = *by_offset[k - 1];
    const GgufTensorInfo& b = *by_offset[k];
    if (a.offset + a.size > b.offset)
      fail(b.info_offset, "tensor " + quoted(b.name) + " at offset " + std::to_string(b.offset) + " overlaps tensor " +
                              quoted(a.name) + " (offset " + std::to_string(a.offset) + ", " + std::to_string(a.size) +
                              " bytes)");
  }
}

const GgufKV* GgufFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const GgufTensorInfo* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
std::string type_desc(const GgufKV& kv) {
  if (kv.type == GgufValueType::Array)
    return std::string("array of ") + gguf_value_type_name(static_cast<uint32_t>(kv.elem_type));
  return gguf_value_type_name(static_cast<uint32_t>(kv.type));
}
}  // namespace

uint64_t GgufFile::get_uint(std::string_view key) const {
  const GgufKV* kv = find(key);
  if (!kv) throw Error(name_, -1, "missing metadata key '" + std::string(key) + "'");
  if (!is_integer_type(kv->type)) fail(kv->offset, "key '" + kv->key + "' is a " + type_desc(*kv) + ", not an integer");
  if (kv->i < 0) fail(kv->offset, "key '" + kv->key + "' is negative (" + std::to_string(kv->i) + ")");
  return kv->u;
}

uint64_t GgufFile::get_uint_or(std::string_view key, uint64_t fallback) const {
  return find(key) ? get_uint(key) : fallback;
}

double GgufFile::get_float_or(std::string_view key, double fallback) const {
  const GgufKV* kv = find(key);
  if (!kv) return fallback;
  if (!is_numeric_type(kv->type)) fail(kv->offset, "key '" + kv->key + "' is a " + type_desc(*kv) + ", not a number");
  return kv->f;
}

bool GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  const GgufKV* kv = find(key);
  if (!kv) return fallback;
  if (kv->type != GgufValueType::Bool) fail(kv->offset, "key '" + kv->key + "' is a " + type_desc(*kv) + ", not a bool");
  return kv->u != 0;
}

std::string GgufFile::get_string(std::string_view key) const {
  const GgufKV* kv = find(key);
  if (!kv) throw Error(name_, -1, "missing metadata key '" + std::string(key) + "'");
  if (kv->type != GgufValueType::String) fail(kv->offset, "key '" + kv->key + "' is a " + type_desc(*kv) + ", not a string");
  return std::string(kv->str);
}

std::string GgufFile::get_string_or(std::string_view key, const std::string& fallback) const {
  return find(key) ? get_string(key) : fallback;
}

const std::vector<std::string_view>& GgufFile::get_string_array(std::string_view key) const {
  const GgufKV* kv = find(key);
  if (!kv) throw Error(name_, -1, "missing metadata key '" + std::string(key) + "'");
  if (kv->type != GgufValueType::Array || kv->elem_type != GgufValueType::String)
    fail(kv->offset, "key '" + kv->key + "' is a " + type_desc(*kv) + ", not an array of strings");
  return kv->strings;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const GgufKV* kv = find(key);
  if (!kv) throw Error(name_, -1, "missing metadata key '" + std::string(key) + "'");
  if (kv->type != GgufValueType::Array || !is_numeric_type(kv->elem_type))
    fail(kv->offset, "key '" + kv->key + "' is a " + type_desc(*kv) + ", not an array of numbers");
  const auto es = static_cast<uint64_t>(value_size(static_cast<uint32_t>(kv->elem_type)));
  std::vector<float> out(static_cast<size_t>(kv->count));
  for (uint64_t k = 0; k < kv->count; ++k) {
    int64_t i = 0;
    uint64_t u = 0;
    double f = 0;
    bool neg = false;
    decode_scalar(kv->elem_type, data_ + kv->data_offset + k * es, &i, &u, &f, &neg);
    out[k] = static_cast<float>(std::clamp(f, -3.0e38, 3.0e38));  // NaN passes through
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const GgufKV* kv = find(key);
  if (!kv) throw Error(name_, -1, "missing metadata key '" + std::string(key) + "'");
  if (kv->type != GgufValueType::Array || !is_integer_type(kv->elem_type))
    fail(kv->offset, "key '" + kv->key + "' is a " + type_desc(*kv) + ", not an array of integers");
  const auto es = static_cast<uint64_t>(value_size(static_cast<uint32_t>(kv->elem_type)));
  std::vector<int64_t> out(static_cast<size_t>(kv->count));
  for (uint64_t k = 0; k < kv->count; ++k) {
    uint64_t u = 0;
    double f = 0;
    bool neg = false;
    decode_scalar(kv->elem_type, data_ + kv->data_offset + k * es, &out[k], &u, &f, &neg);
  }
  return out;
}

}  // namespace qrun
