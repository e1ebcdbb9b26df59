import os
import sqlite3

connection = None


def connect(path):
    global connection
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE IF NOT EXISTS opened (pid INTEGER)")
    connection.execute("INSERT INTO opened VALUES (?)", (os.getpid(),))
    connection.commit()


def opened_by():
    (pid,) = connection.execute("SELECT pid FROM opened WHERE pid = ?", (os.getpid(),)).fetchone()
    return pid
