import Scheduler
import Platform

@main
struct App {
    static func main() async {
        await ServiceMain.run(serviceName: SchedulerService.name, defaultPort: SchedulerService.defaultPort, build: SchedulerService.buildApplication)
    }
}
