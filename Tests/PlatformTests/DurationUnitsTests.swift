import Platform
import XCTest

/// An XCTest case, so that `swift test`'s XCTest summary line counts executed tests too.
final class DurationUnitsTests: XCTestCase {
    func testConvertsForRedisArgumentsAndReports() {
        XCTAssertEqual(Duration.milliseconds(1500).wholeMilliseconds, 1500)
        XCTAssertEqual(Duration.seconds(2).wholeMilliseconds, 2000)
        XCTAssertEqual(Duration.microseconds(999).wholeMilliseconds, 0)
        XCTAssertEqual(Duration.milliseconds(250).secondsValue, 0.25)
    }
}
