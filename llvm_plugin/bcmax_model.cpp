//===- bcmax_model.cpp - Checks and wraps the AOT-compiled model ----------===//
//
// InlinerSizeModel.h is written by `saved_model_cli aot_compile_cpu
// --cpp_class llvm::InlinerSizeModel` (see compiler_opt/tools/export_model.py).
//
//===----------------------------------------------------------------------===//

#include "bcmax_model.h"

#include "InlinerSizeModel.h"
#include "llvm/Analysis/ReleaseModeModelRunner.h"
#include "llvm/ADT/StringRef.h"

#include <algorithm>

using llvm::InlinerSizeModel;
using llvm::StringRef;

namespace bcmax {
namespace {
constexpr StringRef FeedPrefix = "feed_";
constexpr StringRef FetchPrefix = "fetch_";
} // namespace

std::string describeModelMismatch(const std::vector<llvm::TensorSpec> &Features,
                                  const std::string &DecisionName) {
  // The generated class keeps its name tables private: every input is found
  // by looking up each feature's name, and any input left over is unknown.
  const InlinerSizeModel Model(
      InlinerSizeModel::AllocMode::RESULTS_PROFILES_AND_TEMPS_ONLY);
  std::vector<bool> Known(Model.num_args(), false);
  std::string Problems;
  for (const auto &Spec : Features) {
    const int Index = Model.LookupArgIndex(FeedPrefix.str() + Spec.name());
    if (Index < 0)
      continue;
    Known[Index] = true;
    const size_t Bytes = Model.arg_size(Index);
    if (Bytes != Spec.getTotalTensorBufferSize())
      Problems += "  input '" + Spec.name() + "' has " + std::to_string(Bytes) +
                  " bytes, the compiler provides " +
                  std::to_string(Spec.getTotalTensorBufferSize()) + "\n";
  }
  const auto Unknown = std::count(Known.begin(), Known.end(), false);
  if (Unknown > 0)
    Problems += "  inputs that are not features of this compiler's inliner: " +
                std::to_string(Unknown) + " of " +
                std::to_string(Model.num_args()) + "\n";
  if (Model.num_variables() != 0)
    Problems += "  the model has unfrozen variables\n";
  if (Model.LookupResultIndex(FetchPrefix.str() + DecisionName) < 0)
    Problems += "  the model has no output '" + FetchPrefix.str() +
                DecisionName + "'\n";
  return Problems;
}

std::unique_ptr<llvm::MLModelRunner>
createModelRunner(llvm::LLVMContext &Ctx,
                  const std::vector<llvm::TensorSpec> &Features,
                  const std::string &DecisionName) {
  return std::make_unique<llvm::ReleaseModeModelRunner<InlinerSizeModel>>(
      Ctx, Features, DecisionName,
      llvm::EmbeddedModelRunnerOptions()
          .setFeedPrefix(FeedPrefix)
          .setFetchPrefix(FetchPrefix));
}

} // namespace bcmax
