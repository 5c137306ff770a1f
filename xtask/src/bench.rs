pub fn run(_n: Option<&str>) -> crate::Result {
    Err("todo".into())
}
