//===- bcmax_model.h - The AOT-compiled inlining model, seen by the plugin ===//
//
// The only translation unit that includes the generated InlinerSizeModel.h is
// bcmax_model.cpp, so a new export recompiles one small file.
//
//===----------------------------------------------------------------------===//

#ifndef BCMAX_MODEL_H
#define BCMAX_MODEL_H

#include "llvm/Analysis/MLModelRunner.h"
#include "llvm/Analysis/TensorSpec.h"

#include <memory>
#include <string>
#include <vector>

namespace llvm {
class LLVMContext;
} // namespace llvm

namespace bcmax {

/// Returns "" if every input of the compiled model is `feed_<name>` for a
/// feature in `Features` with the same byte size, and the model returns
/// `fetch_<DecisionName>` as one int64. Otherwise returns one line per problem.
std::string describeModelMismatch(const std::vector<llvm::TensorSpec> &Features,
                                  const std::string &DecisionName);

/// A ReleaseModeModelRunner around the compiled model. Call only after
/// describeModelMismatch(Features, ...) returned "".
std::unique_ptr<llvm::MLModelRunner>
createModelRunner(llvm::LLVMContext &Ctx,
                  const std::vector<llvm::TensorSpec> &Features,
                  const std::string &DecisionName);

} // namespace bcmax

#endif // BCMAX_MODEL_H
