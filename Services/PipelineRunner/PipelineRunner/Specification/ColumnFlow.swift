/// Follows a table's columns through a pipeline's transformations: which columns each step has to work with,
/// whether the columns it names are among them, and which columns come out at the end. Pure, for deploy checks.
enum ColumnFlow {
    /// The columns that come out of `steps` applied to `columns` (`nil` when they cannot be known: the source is a
    /// query, or a `sql` step reshapes the rows), and a problem for every column a step names that is not there.
    static func trace(_ columns: [String]?, through steps: [TransformationStep]) -> (columns: [String]?, problems: [SpecificationProblem]) {
        var current = columns
        var problems: [SpecificationProblem] = []
        for (index, step) in steps.enumerated() {
            guard let available = current else { break }
            let path = "transformations[\(index)]"
            func require(_ column: String, at field: String) {
                if !available.contains(column) {
                    problems.append(SpecificationProblem(path: field, reason: "names column \(column), which is not there at this step (there: \(available.joined(separator: ", ")))"))
                }
            }
            switch step.transformation {
            case .filter:
                break
            case .select(let selected, let rename):
                for (position, column) in selected.enumerated() { require(column, at: "\(path).columns[\(position)]") }
                current = selected.map { rename[$0] ?? $0 }
            case .derive(let column, _):
                current = available.contains(column) ? available : available + [column]
            case .cast(let casts):
                for column in casts.keys.sorted() { require(column, at: "\(path).columns.\(column)") }
            case .aggregate(let groupBy, let aggregations):
                for (position, column) in groupBy.enumerated() { require(column, at: "\(path).group_by[\(position)]") }
                current = groupBy + aggregations.keys.sorted()
            case .deduplicate(let key):
                for (position, column) in key.enumerated() { require(column, at: "\(path).key[\(position)]") }
            case .sql:
                current = nil
            }
        }
        return (current, problems)
    }
}
