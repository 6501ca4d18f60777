import Platform
import SharedModels

/// One thing wrong with a pipeline: the JSON path of the field (`transformations[2].condition`) and why.
struct SpecificationProblem: Sendable, Equatable, CustomStringConvertible {
    var path: String
    var reason: String
    /// `UNSUPPORTED_TRANSFORMATION` for a transformation type the platform does not run, else `VALIDATION_ERROR`.
    var code: ErrorCode = .validationError

    var description: String { "\(path): \(reason)" }

    /// The problem as the error envelope lists it.
    var json: JSONValue { ["field": .string(path), "reason": .string(reason), "code": .string(code.rawValue)] }
}

/// Everything wrong with a pipeline at once, so a client fixes it in one round trip: a 422 whose `details`
/// carry the first problem as `field`/`reason` (the envelope's usual shape) and all of them as `problems`.
struct SpecificationProblems: Error, Sendable, Equatable, APIErrorConvertible {
    var problems: [SpecificationProblem]
    /// What was checked, for the message (`The pipeline`, `The deployment`).
    var subject: String = "The pipeline"

    init(_ problems: [SpecificationProblem], subject: String = "The pipeline") {
        self.problems = problems
        self.subject = subject
    }

    var apiError: APIError {
        let first = problems.first ?? SpecificationProblem(path: "body", reason: "is invalid")
        let count = problems.count == 1 ? "1 problem" : "\(problems.count) problems"
        // A transformation the platform does not run is the contract's own code, whatever else is wrong too.
        let code: ErrorCode = problems.contains { $0.code == .unsupportedTransformation } ? .unsupportedTransformation : first.code
        return APIError(
            .unprocessableContent, code: code, message: "\(subject) has \(count); first: \(first)",
            details: ["field": .string(first.path), "reason": .string(first.reason), "problems": .array(problems.map(\.json))])
    }
}
